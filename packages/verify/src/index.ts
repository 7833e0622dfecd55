export { verifyKey, parseKey, MAX_KEY_LENGTH, type KeyClaims, type KeyVerification, type VerifyKeyOptions } from './license-key.js';
export {
  verifyLicenseFile,
  inspectLicenseFile,
  LICENSE_FILE_LABEL,
  type LicenseFileAlgorithm,
  type LicenseFilePayload,
  type LicenseFileVerification,
  type VerifyLicenseFileOptions,
} from './license-file.js';
export {
  createActivationRequest,
  parseActivationRequest,
  createNonce,
  ACTIVATION_REQUEST_LABEL,
  type ActivationRequest,
  type ActivationRequestInput,
} from './activation-request.js';
export {
  verifyResponseSignature,
  responseSigningMessage,
  parseSignatureHeader,
  ACCEPT_SIGNATURE_HEADER,
  SIGNATURE_HEADER,
  type ResponseVerification,
  type VerifyResponseOptions,
} from './response-signature.js';
export {
  KeymintClient,
  type KeymintClientOptions,
  type ValidateParams,
  type ActivateParams,
  type DeviceParams,
  type CheckoutParams,
  type CheckoutResult,
  type RequestOptions,
  type Validation,
  type OnlineValidation,
  type OfflineValidation,
} from './client.js';
export { MemoryStorage, webStorage, type LicenseStorage } from './storage.js';
export { createKeySet, parsePublicKey, KeySet, type PublicKeyEntry, type PublicKeyInput } from './public-keys.js';
export { useEd25519, type Ed25519Verifier } from './crypto.js';
export {
  KeymintError,
  KeymintNetworkError,
  KeymintSignatureError,
  KeymintApiError,
  KeymintOfflineError,
  type KeyRejection,
  type LicenseFileRejection,
  type ResponseRejection,
} from './errors.js';
export type { License, LicenseStatus, Device, DeletedDevice, LicenseValidation, LicenseFileResponse, ValidationCode } from './types.js';
