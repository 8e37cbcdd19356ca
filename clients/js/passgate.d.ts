/** Passgate's browser client: passkey sign-up, sign-in, autofill and account management. */

export type ErrorCode =
  | "cancelled"
  | "already_registered"
  | "not_allowed"
  | "unsupported"
  | "server_error"
  | "network_error"
  | "unknown";

export const ERROR_CODES: readonly ErrorCode[];

export class PasskeyClientError extends Error {
  constructor(
    code: ErrorCode,
    message: string,
    details?: { cause?: unknown; serverCode?: string | null; status?: number | null },
  );
  readonly name: "PasskeyClientError";
  /** One of ERROR_CODES. */
  code: ErrorCode;
  /** Passgate's `error` when it refused (code `server_error`), e.g. "step_up_required". */
  serverCode: string | null;
  status: number | null;
}

export interface Configuration {
  /** The Passgate origin requests go to; "" is the page's own. */
  baseUrl: string;
  /** The app of the app passkey API these pages belong to, if any. */
  appId: string | null;
}

/** Point the client at a Passgate on another origin; without `baseUrl`, back at the module's own origin.
 * `appId`: the app passkey API's app (registerForApp, signInToApp). */
export function configure(options?: { baseUrl?: string | null; appId?: string | null }): Configuration;

/** App passkey API: add a passkey to one of the app's users with the registration token its server got. */
export function registerForApp(options: {
  registrationToken: string;
  signal?: AbortSignal;
}): Promise<{ verified: boolean; credentialId: string }>;

/** App passkey API: sign one of the app's users in; the single-use token goes to the app's server to verify. */
export function signInToApp(options?: { userId?: string; signal?: AbortSignal }): Promise<{
  token: string;
  expiresAt: string;
}>;

export interface User {
  id: string;
  username: string;
  displayName: string;
}

export interface SignedIn {
  verified: boolean;
  user: User;
}

export interface Registered extends SignedIn {
  credentialId: string;
}

export interface Passkey {
  id: string;
  name: string;
  nickname: string | null;
  provider: { name: string; known: boolean; iconLight: string | null; iconDark: string | null };
  synced: boolean;
  backupEligible: boolean;
  transports: string[];
  createdAt: string;
  lastUsedAt: string | null;
}

export function isSupported(): boolean;
export function isAutofillSupported(): Promise<boolean>;

export function register(options?: {
  username?: string;
  displayName?: string;
  userId?: string;
  signal?: AbortSignal;
}): Promise<Registered>;
export function signIn(options?: { username?: string; signal?: AbortSignal }): Promise<SignedIn>;
export function autofill(options?: { signal?: AbortSignal }): Promise<SignedIn>;
export function signOut(): Promise<{ signedOut: true }>;

export interface SignedInWithPassword extends SignedIn {
  /** Offer the passkey now: call upgrade(), then register() if it made none. */
  upgrade?: boolean;
}

export type UpgradeResult =
  | { created: true; passkey: Registered }
  | {
      created: false;
      /** "unsupported": no conditional create here; "cancelled": the browser made nothing in time; ... */
      reason: ErrorCode;
      error?: PasskeyClientError;
    };

/** Whether the server should be asked for a password for this username (true also when no account has it). */
export function passwordAvailable(username: string): Promise<boolean>;
export function signInWithPassword(username: string, password: string): Promise<SignedInWithPassword>;
/** Right after a password sign-in: a passkey made by the browser without a prompt, where it can. */
export function isConditionalCreateSupported(): Promise<boolean>;
export function upgrade(options?: { signal?: AbortSignal; timeout?: number }): Promise<UpgradeResult>;
/** Needs step-up: wrap it in withStepUp. */
export function removePassword(): Promise<{ removed: true }>;
export function stepUp(options?: { signal?: AbortSignal }): Promise<Registered>;
export function withStepUp<T>(
  action: () => Promise<T>,
  hooks?: { beforeStepUp?: () => void; afterStepUp?: () => void },
): Promise<T>;

export function getAccount(): Promise<Record<string, unknown>>;
export function getEvents(): Promise<{ events: Record<string, unknown>[] }>;
export function updateDisplayName(displayName: string): Promise<Record<string, unknown>>;
export function listPasskeys(): Promise<{ passkeys: Passkey[] }>;
export function dismissNudge(): Promise<Record<string, unknown>>;
export function renamePasskey(credentialId: string, nickname: string | null): Promise<Record<string, unknown>>;
export function removePasskey(credentialId: string): Promise<Record<string, unknown>>;

export function listConnectedApps(): Promise<{ consents: Record<string, unknown>[] }>;
export function disconnectApp(clientId: string): Promise<null>;

export function generateBackupCodes(): Promise<{ codes: string[] }>;
export function signInWithBackupCode(options: { username: string; code: string }): Promise<SignedIn>;
export function setEmail(email: string): Promise<Record<string, unknown>>;
export function verifyEmail(token: string): Promise<Record<string, unknown>>;
export function requestSignInLink(email: string): Promise<Record<string, unknown>>;
export function signInWithLink(token: string): Promise<SignedIn>;

export function signalAcceptedCredentials(): Promise<boolean>;
export function signalCurrentUserDetails(): Promise<boolean>;

export function bufferToBase64url(buffer: ArrayBuffer | ArrayBufferView): string;
export function base64urlToBuffer(text: string): ArrayBuffer;
