/**
 * The `libsodium` package ships no types: its default export is an Emscripten module (or, in
 * its ESM build, a factory of one). aead.ts says what it uses of it.
 */
declare module 'libsodium' {
  const entry: unknown;
  export default entry;
}
