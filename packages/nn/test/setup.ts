// Test bootstrap: @qbnn/core's initBackend (wasm with every gradient and the missing training
// kernels; set QBNN_TEST_BACKEND=cpu to run the suite on the cpu backend).
import { initBackend } from '@qbnn/core';

export async function ready(): Promise<void> {
  const b = process.env.QBNN_TEST_BACKEND;
  await initBackend({ backend: b === 'cpu' || b === 'wasm' ? b : 'auto' });
}
