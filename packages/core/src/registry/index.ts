export {
  getKernelProvider,
  type KernelProviderInfo,
  listKernelProviders,
  registerKernelProvider,
  setDefaultKernelProvider,
  unregisterKernelProvider,
} from './kernels.js';
export { type RegisterOptions, Registry } from './registry.js';
