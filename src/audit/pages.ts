/**
 * A LIST read page by page (`limit` and `continue`), as client-go's pager reads one: every page
 * is served from the snapshot of the first, so the pages together are one consistent list whose
 * resourceVersion a watch can start from. The API server holds less in memory for each request
 * than for one unbounded LIST.
 */

/** The list metadata of a page: typed clients call the token `_continue`, raw JSON `continue`. */
export interface PageMetadata {
  _continue?: string | undefined;
  continue?: string | undefined;
  resourceVersion?: string | undefined;
}

export interface Page<T> {
  items?: T[] | undefined;
  metadata?: PageMetadata | undefined;
}

/** The default page size, as kubectl's --chunk-size. */
export const DEFAULT_PAGE_SIZE = 500;

const isExpired = (error: unknown) => (error as { code?: unknown } | null)?.code === 410;

/**
 * Every item of a LIST, page by page. A continue token expires (410 Gone) when the snapshot it
 * reads from is compacted away, after about five minutes: the list then starts over once, from a
 * new snapshot.
 */
export async function listAllPages<T>(
  fetchPage: (page: { limit: number; continueToken: string | undefined }) => Promise<Page<T>>,
  limit = DEFAULT_PAGE_SIZE,
  onPage: () => void = () => {},
): Promise<{ items: T[]; resourceVersion: string }> {
  for (let attempt = 1; ; attempt++) {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion = '';
    try {
      do {
        const page = await fetchPage({ limit, continueToken });
        onPage();
        items.push(...(page.items ?? []));
        resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
        continueToken = page.metadata?._continue || page.metadata?.continue || undefined;
      } while (continueToken);
      return { items, resourceVersion };
    } catch (error) {
      if (attempt < 2 && continueToken && isExpired(error)) continue;
      throw error;
    }
  }
}
