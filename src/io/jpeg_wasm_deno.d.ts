/** The compiled MozJPEG decoder module of `@jsquash/jpeg`. */
declare const decoder: WebAssembly.Module;
export default decoder;
