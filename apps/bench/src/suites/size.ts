import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initBackend } from '@qbnn/core';
import { decodeSafetensors } from '@qbnn/nn';
import { save } from '@qbnn/nn/node';
import { serializeQuantized } from '@qbnn/qat';
import { saveQuantized } from '@qbnn/qat/node';
import { measure, type Suite, type SuiteContext } from '../harness.js';
import {
  buildBayes,
  MODELS,
  type ModelName,
  POSTERIORS,
  type PosteriorKind,
  quantizeModel,
} from '../models.js';

/** Bytes of the integer (I8/U8) tensors of a quantised checkpoint. */
function integerPayload(bytes: Uint8Array): number {
  const f = decodeSafetensors(bytes);
  let n = 0;
  for (const t of Object.values(f.tensors)) if (t.dtype === 'I8' || t.dtype === 'U8') n += t.data.byteLength;
  return n;
}

export const sizeSuite: Suite = {
  name: 'size',
  description:
    'checkpoint bytes: fp32 (nn save) vs int8 and 4-bit (qat saveQuantized) for each model and posterior',
  async run(ctx: SuiteContext) {
    await initBackend({ backend: 'wasm' });
    const dir = await mkdtemp(join(tmpdir(), 'qbnn-bench-size-'));
    const models: ModelName[] = ctx.quick ? ['mlp'] : MODELS;
    const posts: PosteriorKind[] = ctx.quick ? ['gaussian'] : POSTERIORS;
    ctx.note(
      'Checkpoints of untrained models written to a temp dir and measured with stat: fp32 with @qbnn/nn save (safetensors, every parameter and buffer: mu and rho for Gaussian/Radial, the weights plus every collected member for SGHMC), int8 and 4-bit with @qbnn/qat saveQuantized after PTQ (W8A8 or W4A8). median ms = time of the save call; the sizes are in ratios bytes_<model>_<posterior>_<precision> and in extra.bytes.',
    );
    ctx.note(
      "4-bit weights are stored one value per byte: qat's safetensors format keeps every integer tensor as I8/U8 whatever the bit width (no nibble packing), so a 4-bit file is about the size of the 8-bit one (metadata aside). ratios packed_estimate_bytes_*_int4 give the size if two 4-bit values shared a byte (the integer payload halved).",
    );
    try {
      for (const name of models) {
        for (const post of posts) {
          const fp = buildBayes(name, post);
          const fpPath = join(dir, `${name}-${post}-fp32.safetensors`);
          const r = await measure(`checkpoint ${name}/${post}`, 'fp32 nn.save', {}, () => save(fp, fpPath), {
            runs: ctx.runs,
          });
          const fpBytes = (await stat(fpPath)).size;
          r.extra = { bytes: fpBytes };
          ctx.add(r);
          ctx.ratio(`bytes_${name}_${post}_fp32`, fpBytes);
          fp.dispose();
          for (const bits of [8, 4]) {
            const tag = bits === 8 ? 'int8' : 'int4';
            let qm: Awaited<ReturnType<typeof quantizeModel>>;
            try {
              qm = await quantizeModel(name, buildBayes(name, post), bits);
            } catch (err) {
              ctx.note(
                `${name}/${post} ${tag}: qat's convert refused the model: ${err instanceof Error ? err.message : String(err)}`,
              );
              break;
            }
            const path = join(dir, `${name}-${post}-${tag}.safetensors`);
            const q = await measure(
              `checkpoint ${name}/${post}`,
              `${tag} qat.saveQuantized`,
              { weightBits: bits },
              () => saveQuantized(qm, path),
              { runs: ctx.runs },
            );
            const bytes = (await stat(path)).size;
            q.extra = { bytes, fp32_over_this: Number((fpBytes / bytes).toPrecision(4)) };
            ctx.add(q);
            ctx.ratio(`bytes_${name}_${post}_${tag}`, bytes);
            ctx.ratio(`fp32_over_${tag}_${name}_${post}`, fpBytes / bytes);
            if (bits === 4) {
              const packed = bytes - Math.floor(integerPayload(serializeQuantized(qm)) / 2);
              ctx.ratio(`packed_estimate_bytes_${name}_${post}_int4`, packed);
            }
          }
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
