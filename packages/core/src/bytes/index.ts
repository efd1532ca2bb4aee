export { crc32 } from './crc32.js';
export { gunzip, type InflateOptions, inflateRaw, isGzip, MAX_INFLATE_BYTES } from './inflate.js';
