// The optional native addon, loaded once. Benchmarks run without it (JS reference only) and
// say so in a note.
type NativeModule = typeof import('@qbnn/native-amx');

let cached: Promise<NativeModule | undefined> | undefined;

export function loadNative(): Promise<NativeModule | undefined> {
  cached ??= import('@qbnn/native-amx')
    .then((m) => (m.nativeAvailable ? m : undefined))
    .catch(() => undefined);
  return cached;
}
