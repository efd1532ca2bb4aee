export { getKernelProvider } from '@qbnn/core';
