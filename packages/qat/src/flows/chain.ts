import { Dropout, Identity, isResidualBlock, type Module, Sequential } from '@qbnn/nn';

/** A module and its dotted path in the model. */
export type Leaf = [path: string, module: Module];

/**
 * The chain of a module: its leaves in execution order, nested Sequentials flattened (a residual
 * block, or any other container, is one leaf). The one walk every flow step (BN folding, prepare,
 * convert) makes over a model.
 */
export function chainOf(model: Module, prefix = ''): Leaf[] {
  const out: Leaf[] = [];
  const visit = (m: Module, path: string) => {
    if (m instanceof Sequential) {
      for (const [n, c] of m.namedChildren()) visit(c, path ? `${path}.${n}` : n);
    } else out.push([path, m]);
  };
  visit(model, prefix);
  return out;
}

/** Modules that compute nothing at inference (Identity, Dropout unless always on). */
export function isPassThrough(m: Module): boolean {
  return m instanceof Identity || (m instanceof Dropout && !m.alwaysOn);
}

/** Index of the next leaf after `i` that computes something. */
export function nextIndex(leaves: Leaf[], i: number): number {
  let j = i + 1;
  while (j < leaves.length && isPassThrough(leaves[j][1])) j++;
  return j;
}

/** The parts of a residual block (nn's `ResidualBlock`: Residual, ResNet's BasicBlock) as chains. */
export interface ResidualChains {
  body: Leaf[];
  shortcut: Leaf[];
  /** Path of the module after the add (observed / fake-quantised there). */
  postPath: string;
}

/** The chains of `m` when it declares itself a residual block (nn's `isResidualBlock`), else undefined. */
export function residualChains(m: Module, path: string): ResidualChains | undefined {
  if (!isResidualBlock(m)) return undefined;
  const join = (n: string) => (path ? `${path}.${n}` : n);
  const parts = m.residualParts();
  return {
    body: parts.body.flatMap((n) => chainOf(m.child(n), join(n))),
    shortcut: chainOf(m.child(parts.shortcut), join(parts.shortcut)),
    postPath: join(parts.post),
  };
}
