/** Which native path is available, or why none is: the `isa` field of the machine line. */
export async function detectIsa(): Promise<{ isa: string; native: unknown }> {
  try {
    const native = (await import('@qbnn/native-amx')) as { isa?: () => string };
    return { isa: typeof native.isa === 'function' ? native.isa() : 'js', native };
  } catch {
    return { isa: 'js (no native addon)', native: undefined };
  }
}
