/**
 * The isomorphic crypto layer (noble only, no Node built-ins). The Node-only key-file I/O is in
 * keyfile-node.ts and is re-exported from the server entry instead.
 */
export { CryptoError, DECRYPT_FAILED_MESSAGE, type CryptoErrorCode } from './errors.js';
export { assertBytes, assertString, concatBytes, fromBase64, isBytes, toBase64, utf8Decode, utf8Encode } from './bytes.js';
export {
  BOX_PUBLIC_KEY_LENGTH,
  BOX_SECRET_KEY_LENGTH,
  MAC_LENGTH,
  NONCE_LENGTH,
  SECRETBOX_KEY_LENGTH,
  boxKeyPair,
  boxKeyPairFromSecretKey,
  boxOpen,
  boxSeal,
  boxSharedKey,
  secretboxKey,
  secretboxOpen,
  secretboxSeal,
  type BoxKeyPair,
  type SealOptions,
} from './nacl.js';
export {
  SIGNATURE_LENGTH,
  SIGNING_PUBLIC_KEY_LENGTH,
  SIGNING_SECRET_KEY_LENGTH,
  envelopeSigningBytes,
  sign,
  signEnvelope,
  signingKeyPair,
  signingKeyPairFromSecretKey,
  verify,
  verifyEnvelope,
  type SigningKeyPair,
} from './sign.js';
export { KEYRING_KEY_LENGTH, KeyRing, type KeyRingExport, type KeyRingOptions } from './keyring.js';
export {
  DEFAULT_KEY_FILE_KDF,
  KEY_FILE_CIPHER,
  KEY_FILE_FORMAT,
  KEY_FILE_VERSION,
  decryptKeyFile,
  decryptKeyFileAsync,
  encryptKeyFile,
  encryptKeyFileAsync,
  type KeyFileOptions,
  type ScryptParams,
} from './keyfile.js';
