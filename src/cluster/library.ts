// The parts of @kubernetes/client-node that sts-guard uses, loaded with one import() by
// kubernetesClientLoader (./client.ts). Named exports rather than the whole namespace, so the
// esbuild bundle's client chunk holds only these and what they need: about half the library,
// which a cold instance loads and compiles at its first look-up (bench/README.md).
export { AppsV1Api, CoreV1Api, KubeConfig, ListWatch, Observable, Watch } from '@kubernetes/client-node';
