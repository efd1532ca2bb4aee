// tfjs bootstrap: backend choice, gradient registration, kernels the wasm backend lacks.
export {};
