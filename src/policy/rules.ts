/**
 * The rules a platform team can tune and the advisories the policy reports beside them. Ids
 * appear in messages, metrics, configuration, exceptions and policy reports. This module imports
 * nothing, so every other module of the policy can depend on it.
 */

/** `enforce` denies, `warn` admits with a warning, `off` skips the rule. */
export type RuleMode = 'enforce' | 'warn' | 'off';

export const RULE_IDS = ['replica-set', 'headless-service', 'service-protection', 'client-routing'] as const;
export type RuleId = (typeof RULE_IDS)[number];

/**
 * Findings that never deny, whatever the configuration: the policy only advises (an admission
 * warning; `warn` in a policy report).
 */
export const ADVISORY_IDS = [
  // An even member count survives no more failures than one member fewer.
  'member-count',
  // persistentVolumeClaimRetentionPolicy Delete deletes database volumes.
  'volume-retention',
  // A headless Service without publishNotReadyAddresses: not-ready members have no DNS record.
  'publish-not-ready-addresses',
] as const;
export type AdvisoryId = (typeof ADVISORY_IDS)[number];

/** What a finding is about: a rule, or an advisory. */
export type CheckId = RuleId | AdvisoryId;
