/** Passgate's web components: <passgate-sign-in>, <passgate-sign-up> and <passgate-passkeys>. */

import type { PasskeyClientError, User } from "./passgate.js";

export { configure } from "./passgate.js";

/** Every text the components show, in English; setTexts replaces some of them. */
export const TEXTS: {
  signIn: string;
  signUp: string;
  username: string;
  displayName: string;
  addPasskey: string;
  remove: string;
  removeLabel: string;
  noPasskeys: string;
  created: string;
  cancelled: string;
  alreadyRegistered: string;
  unsupported: string;
  networkError: string;
  notSignedIn: string;
  failed: string;
};

export type TextKey = keyof typeof TEXTS;

export function setTexts(texts: Partial<Record<TextKey, string>>): void;

/** The text an element announces for a failure. */
export function describeError(error: unknown): string;

export class PasskeySignIn extends HTMLElement {}
export class PasskeySignUp extends HTMLElement {}
export class PasskeyList extends HTMLElement {
  /** Reads the passkeys again and shows them. */
  refresh(): Promise<void>;
}

export interface SignedInDetail {
  user: User;
  /** True after <passgate-sign-up> created the account. */
  newAccount: boolean;
}

declare global {
  interface HTMLElementTagNameMap {
    "passgate-sign-in": PasskeySignIn;
    "passgate-sign-up": PasskeySignUp;
    "passgate-passkeys": PasskeyList;
  }
  interface HTMLElementEventMap {
    "passgate:signed-in": CustomEvent<SignedInDetail>;
    "passgate:passkey-added": CustomEvent<{ credentialId: string }>;
    "passgate:passkey-removed": CustomEvent<{ credentialId: string }>;
    "passgate:error": CustomEvent<{ error: PasskeyClientError | unknown }>;
  }
}
