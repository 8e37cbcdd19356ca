/**
 * Passgate's browser client: passkey sign-up, sign-in and autofill against Passgate's JSON API.
 *
 * One dependency-free ES module, no build step:
 *
 *     import { register, signIn, autofill, PasskeyClientError } from "/static/passgate.js";
 *
 *     await register({ username: "ada", displayName: "Ada Lovelace" });  // signed out: new account
 *     await register();                                                  // signed in: add a passkey
 *     await signIn();                                                    // the browser's passkey prompt
 *     await autofill({ signal });                                        // passkeys offered in the username field
 *
 * Accounts imported with a password (Passgate's `passwords = "migrate"`) sign in with it while they move, and
 * right after that the browser is asked to make a passkey without a prompt where it can (conditional create):
 *
 *     if (await passwordAvailable("ada")) {
 *       const { upgrade: offer } = await signInWithPassword("ada", password);
 *       const { created } = offer ? await upgrade() : { created: false };  // created: false, reason: "unsupported"...
 *     }
 *
 * Account management for the signed-in user (each call is one request to the JSON API):
 *
 *     await withStepUp(() => removePasskey(id));   // confirm with a passkey first when the server asks to
 *     await withStepUp(() => removePassword());     // passkeys only from now on
 *     await renamePasskey(id, "Work laptop");
 *     await updateDisplayName("Ada King");          // and tells the passkey providers (Signal API)
 *     const { codes } = await generateBackupCodes();
 *
 * On a page of another origin, point the client at Passgate first; that origin must be one of Passgate's
 * `cors_origins` (and `origins`), and requests then carry the person's Passgate cookies:
 *
 *     configure({ baseUrl: "https://auth.example.com" });
 *
 * Where the browser has the WebAuthn Signal API, the client keeps password managers in step with the
 * server: removed passkeys disappear from them, a new display name shows in their lists. Where it does
 * not, nothing happens and nothing fails.
 *
 * Every failure is a PasskeyClientError whose `code` is one of a closed set, so a page can tell a person
 * who changed their mind from a real failure:
 *
 *     cancelled           the person dismissed the prompt, it timed out, or the request was aborted
 *     already_registered  this authenticator already holds a passkey for the account (InvalidStateError)
 *     not_allowed         the browser refused for another reason (SecurityError, ConstraintError, ...)
 *     unsupported         no WebAuthn in this browser, or nothing here supports the request
 *     server_error        Passgate refused: `serverCode` and `message` are the server's `error` and `message`
 *     network_error       Passgate could not be reached
 *     unknown             anything else; the original error is `cause`
 */

const ENDPOINTS = {
  registerBegin: "/auth/passkey/register/begin",
  registerComplete: "/auth/passkey/register/complete",
  loginBegin: "/auth/passkey/login/begin",
  loginComplete: "/auth/passkey/login/complete",
  logout: "/auth/logout",
  account: "/auth/account",
  nudgeDismiss: "/auth/account/nudge/dismiss",
  passkeys: "/auth/passkeys",
  signal: "/auth/passkeys/signal",
  events: "/auth/events",
  backupCodes: "/auth/recovery/codes",
  backupCodeSignIn: "/auth/recovery/codes/sign-in",
  email: "/auth/email",
  emailVerify: "/auth/email/verify",
  signInLink: "/auth/recovery/email",
  signInLinkComplete: "/auth/recovery/email/complete",
  consents: "/auth/consents",
  passwordAvailable: "/auth/password/available",
  passwordLogin: "/auth/password/login",
  password: "/auth/password",
};

// The app passkey API's browser endpoints (configure({ appId })).
const APP_ENDPOINTS = {
  registerBegin: "/api/v1/passkeys/register/begin",
  registerComplete: "/api/v1/passkeys/register/complete",
  loginBegin: "/api/v1/passkeys/login/begin",
  loginComplete: "/api/v1/passkeys/login/complete",
};
const CEREMONY_HEADER = "Passgate-Ceremony";

const STEP_UP_REQUIRED = "step_up_required";

// How long upgrade() waits for the browser by default. A browser that will make the passkey does so at once; one
// that will not (no saved password it trusts, no password manager that takes part) may leave the request pending.
const UPGRADE_WAIT_MS = 2000;

// Where Passgate answers: "" is this page's own origin. Loaded from a Passgate on another origin (a page's
// `<script type="module" src="https://auth.example.com/static/passgate.js">`), the client talks to that one.
let baseUrl = ownOrigin();
// With an app id, the app passkey API's browser calls (registerForApp, signInToApp) are for that app.
let appId = null;

function ownOrigin() {
  try {
    const own = new URL(import.meta.url);
    const isOther = typeof location !== "undefined" && own.origin !== location.origin;
    return isOther && ["https:", "http:"].includes(own.protocol) ? own.origin : "";
  } catch {
    return "";
  }
}

/**
 * Point the client at a Passgate on another origin (`https://auth.example.com`); without `baseUrl`, back at the
 * origin the module was loaded from. Requests to another origin include the person's cookies for it (CORS with
 * credentials). A bundled copy of the module is part of the page, so it needs this call to reach another origin.
 *
 * `appId` names the app of the app passkey API whose pages these are (registerForApp, signInToApp): those calls
 * never send cookies, and carry their ceremony in the Passgate-Ceremony header instead.
 *
 * @param {{baseUrl?: string, appId?: string}} [options]
 * @returns {{baseUrl: string, appId: string | null}} the configuration now in force
 * @throws {TypeError} `baseUrl` is not an http(s) origin, or `appId` is not a non-empty string
 */
export function configure({ baseUrl: url, appId: app } = {}) {
  if (app !== undefined && app !== null && (typeof app !== "string" || app === "")) {
    throw new TypeError("appId must be the app's id, a non-empty string");
  }
  appId = app || null;
  if (url === undefined || url === null || url === "") {
    baseUrl = ownOrigin();
  } else {
    const parsed = new URL(url);
    if (!["https:", "http:"].includes(parsed.protocol) || parsed.pathname.replace(/\/+$/, "") !== "") {
      throw new TypeError(`baseUrl must be an origin such as https://auth.example.com, not ${url}`);
    }
    baseUrl = parsed.origin;
  }
  return { baseUrl, appId };
}

export const ERROR_CODES = Object.freeze([
  "cancelled",
  "already_registered",
  "not_allowed",
  "unsupported",
  "server_error",
  "network_error",
  "unknown",
]);

export class PasskeyClientError extends Error {
  /**
   * @param {string} code one of ERROR_CODES
   * @param {string} message for people; may change
   * @param {{cause?: unknown, serverCode?: string|null, status?: number|null}} [details]
   */
  constructor(code, message, { cause, serverCode = null, status = null } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "PasskeyClientError";
    this.code = code;
    this.serverCode = serverCode;
    this.status = status;
  }
}

/** Whether this browser has WebAuthn at all. */
export function isSupported() {
  return (
    typeof window !== "undefined" &&
    typeof window.PublicKeyCredential === "function" &&
    typeof navigator.credentials?.create === "function" &&
    typeof navigator.credentials?.get === "function"
  );
}

/** Resolves to whether the browser can offer passkeys in an `autocomplete="username webauthn"` field. */
export async function isAutofillSupported() {
  if (!isSupported() || typeof PublicKeyCredential.isConditionalMediationAvailable !== "function") {
    return false;
  }
  try {
    return await PublicKeyCredential.isConditionalMediationAvailable();
  } catch {
    return false;
  }
}

// The one pending autofill request. Chromium refuses a modal request while a conditional one is
// pending, so every modal ceremony aborts it first, and waits for it to wind down: its
// /login/begin may still be in flight, and its ceremony cookie must not land after the new one's.
let pendingAutofill = null; // {controller, settled}

async function abortAutofill() {
  if (pendingAutofill === null) {
    return;
  }
  const { controller, settled } = pendingAutofill;
  pendingAutofill = null;
  controller.abort(new PasskeyClientError("cancelled", "The passkey autofill request was replaced."));
  await settled;
}

/**
 * Create a passkey.
 *
 * Signed out, with `username` (and `displayName`): creates an account and signs it in.
 * Signed in, without `username`: adds a passkey to the current account; the server lists the account's
 * passkeys in `excludeCredentials`, so an authenticator that already holds one refuses (`already_registered`).
 *
 * @param {{username?: string, displayName?: string, userId?: string, signal?: AbortSignal}} [options]
 * @returns {Promise<{verified: boolean, user: {id: string, username: string, displayName: string},
 *                    credentialId: string}>} the server's answer
 * @throws {PasskeyClientError}
 */
export async function register({ username, displayName, userId, signal } = {}) {
  requireSupport();
  await abortAutofill();
  const body = username
    ? { username, displayName: displayName || username }
    : { ...(userId ? { userId } : {}), excludeCredentials: true };
  const optionsJSON = await postJSON(ENDPOINTS.registerBegin, body);
  const publicKey = parseCreationOptions(optionsJSON);
  const credential = await createCredential(publicKey, signal);
  return postJSON(ENDPOINTS.registerComplete, credentialToJSON(credential));
}

/**
 * App passkey API: add a passkey to one of the app's own users, with the `registrationToken` the app's server got
 * from `POST /api/v1/registrations`. Needs `configure({ appId })`.
 *
 * @param {{registrationToken: string, signal?: AbortSignal}} options
 * @returns {Promise<{verified: boolean, credentialId: string}>}
 * @throws {PasskeyClientError}
 */
export async function registerForApp({ registrationToken, signal } = {}) {
  requireSupport();
  requireApp();
  await abortAutofill();
  const begun = await appRequest(APP_ENDPOINTS.registerBegin, { registrationToken });
  const publicKey = parseCreationOptions(begun.payload);
  const credential = await createCredential(publicKey, signal);
  return (await appRequest(APP_ENDPOINTS.registerComplete, credentialToJSON(credential), begun.ceremony)).payload;
}

/**
 * App passkey API: sign one of the app's users in. Without `userId` any of the app's passkeys will do
 * (discoverable); with it, only that user's. Resolves with the single-use sign-in token the app's server verifies
 * (JWKS, or `POST /api/v1/signins/verify`). Needs `configure({ appId })`.
 *
 * @param {{userId?: string, signal?: AbortSignal}} [options]
 * @returns {Promise<{token: string, expiresAt: string}>}
 * @throws {PasskeyClientError}
 */
export async function signInToApp({ userId, signal } = {}) {
  requireSupport();
  requireApp();
  await abortAutofill();
  const begun = await appRequest(APP_ENDPOINTS.loginBegin, { appId, ...(userId ? { userId } : {}) });
  const publicKey = parseRequestOptions(begun.payload);
  let credential;
  try {
    credential = await navigator.credentials.get({ publicKey, signal });
  } catch (error) {
    throw fromDOMException(error, "get", signal);
  }
  if (credential === null) {
    throw new PasskeyClientError("cancelled", "No passkey was used.");
  }
  return (await appRequest(APP_ENDPOINTS.loginComplete, credentialToJSON(credential), begun.ceremony)).payload;
}

/** The browser's passkey prompt for a new passkey: the credential, or the error a page can act on. */
async function createCredential(publicKey, signal) {
  let credential;
  try {
    credential = await navigator.credentials.create({ publicKey, signal });
  } catch (error) {
    throw fromDOMException(error, "create", signal);
  }
  if (credential === null) {
    throw new PasskeyClientError("cancelled", "No passkey was created.");
  }
  return credential;
}

/**
 * Resolves to whether the browser may make a passkey without a prompt right after a password sign-in
 * (`PublicKeyCredential.getClientCapabilities()` reports `conditionalCreate`).
 */
export async function isConditionalCreateSupported() {
  if (!isSupported() || typeof PublicKeyCredential.getClientCapabilities !== "function") {
    return false;
  }
  try {
    return (await PublicKeyCredential.getClientCapabilities()).conditionalCreate === true;
  } catch {
    return false;
  }
}

/**
 * Right after a password sign-in, ask the browser to make a passkey for the account without a prompt (a
 * conditional create, `mediation: "conditional"`): password managers that take part make one for a password they
 * just filled in. Passgate allows it only within a few minutes of the password sign-in.
 *
 * Never throws for what the browser or the server decided: resolves to `{created: true, passkey}` (the server's
 * answer) or `{created: false, reason, error?}`, `reason` being a code of ERROR_CODES: `unsupported` (no
 * conditional create here), `cancelled` (the browser made nothing within `timeout` ms, or `signal` aborted),
 * `already_registered` (this password manager holds a passkey for the account already), `server_error`, ...
 * Then offer a normal passkey creation (`register()`), with a word on what a passkey is.
 *
 * @param {{signal?: AbortSignal, timeout?: number}} [options] `timeout`: how long to wait for the browser (ms)
 * @returns {Promise<{created: true, passkey: {verified: boolean, user: object, credentialId: string}} |
 *                   {created: false, reason: string, error?: PasskeyClientError}>}
 */
export async function upgrade({ signal, timeout = UPGRADE_WAIT_MS } = {}) {
  if (!(await isConditionalCreateSupported())) {
    return { created: false, reason: "unsupported" };
  }
  await abortAutofill(); // a pending conditional get would keep the browser from taking this request
  const controller = new AbortController();
  const stop = (reason) => controller.abort(reason);
  signal?.addEventListener("abort", () => stop(signal.reason), { once: true });
  let timer = null;
  try {
    const optionsJSON = await postJSON(ENDPOINTS.registerBegin, { conditional: true });
    const publicKey = parseCreationOptions(optionsJSON);
    if (signal?.aborted) {
      throw new PasskeyClientError("cancelled", "The passkey upgrade was aborted.", { cause: signal.reason });
    }
    timer = setTimeout(() => stop(new PasskeyClientError("cancelled", "The browser made no passkey.")), timeout);
    let credential;
    try {
      const request = { publicKey, mediation: "conditional", signal: controller.signal };
      credential = await navigator.credentials.create(request);
    } catch (error) {
      throw fromDOMException(error, "create", controller.signal);
    }
    clearTimeout(timer); // the browser answered: the server's answer is worth waiting for
    if (credential === null) {
      throw new PasskeyClientError("cancelled", "The browser made no passkey.");
    }
    return { created: true, passkey: await postJSON(ENDPOINTS.registerComplete, credentialToJSON(credential)) };
  } catch (error) {
    if (!(error instanceof PasskeyClientError)) {
      throw error; // a bug, not the browser's or the server's verdict
    }
    return { created: false, reason: error.code, error };
  } finally {
    clearTimeout(timer);
  }
}

function requireApp() {
  if (appId === null) {
    throw new TypeError("call configure({ appId }) first: the app passkey API needs the app's id");
  }
}

/**
 * Sign in through the browser's passkey prompt. Without `username` any passkey for this site will do
 * (a discoverable credential); with it, only that account's passkeys are offered.
 *
 * @param {{username?: string, signal?: AbortSignal}} [options]
 * @returns {Promise<{verified: boolean, user: {id: string, username: string, displayName: string}}>}
 * @throws {PasskeyClientError}
 */
export async function signIn({ username, signal } = {}) {
  requireSupport();
  await abortAutofill();
  return authenticate({ username, signal });
}

/**
 * Offer passkeys in the page's `autocomplete="username webauthn"` field (conditional mediation).
 * Resolves once the person picks a passkey and Passgate signs them in; rejects with `cancelled` when
 * `signal` aborts or when `signIn`, `register` or another `autofill` replaces this request.
 *
 * @param {{signal?: AbortSignal}} [options]
 * @returns {Promise<{verified: boolean, user: {id: string, username: string, displayName: string}}>}
 * @throws {PasskeyClientError} `unsupported` when the browser has no passkey autofill
 */
export async function autofill({ signal } = {}) {
  if (!(await isAutofillSupported())) {
    throw new PasskeyClientError("unsupported", "This browser cannot offer passkeys in a form field.");
  }
  await abortAutofill();
  const controller = new AbortController();
  if (signal) {
    if (signal.aborted) {
      controller.abort(signal.reason);
    } else {
      signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
    }
  }
  const request = authenticate({ mediation: "conditional", signal: controller.signal });
  const current = { controller, settled: request.then(noop, noop) };
  pendingAutofill = current;
  try {
    return await request;
  } finally {
    if (pendingAutofill === current) {
      pendingAutofill = null;
    }
  }
}

function noop() {}

/** End the session. Resolves to the server's answer, `{signedOut: true}`. */
export async function signOut() {
  return postJSON(ENDPOINTS.logout);
}

/**
 * Confirm it's still the signed-in person: a fresh passkey assertion ("step-up"), which sensitive changes
 * need when the session's last passkey use is older than the server's step-up window, and always after
 * signing in with a backup code or an email link. Only the account's own passkeys are offered.
 *
 * @param {{signal?: AbortSignal}} [options]
 * @returns {Promise<{verified: boolean, user: object, credentialId: string}>}
 * @throws {PasskeyClientError} `cancelled` when the person closes the prompt
 */
export async function stepUp({ signal } = {}) {
  requireSupport();
  await abortAutofill();
  return authenticate({ stepUp: true, signal });
}

/**
 * Run `action`; if the server answers `step_up_required`, confirm with a passkey (stepUp) and run it once more.
 * `beforeStepUp` is called just before the passkey prompt (to tell the person why it appears),
 * `afterStepUp` once it succeeded.
 *
 * @template T
 * @param {() => Promise<T>} action
 * @param {{beforeStepUp?: () => void, afterStepUp?: () => void}} [hooks]
 * @returns {Promise<T>}
 * @throws {PasskeyClientError} from the action, or from the step-up (`cancelled`, ...)
 */
export async function withStepUp(action, { beforeStepUp, afterStepUp } = {}) {
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof PasskeyClientError) || error.serverCode !== STEP_UP_REQUIRED) {
      throw error;
    }
  }
  beforeStepUp?.();
  await stepUp();
  afterStepUp?.();
  return action();
}

// --- Passwords (while accounts move to passkeys) --------------------------------------------------------

/**
 * Whether the sign-in page should ask for `username`'s password: true for an account with one, and also for a
 * username no account has (its password then fails like a wrong one), false for an account without a password.
 * Refused with `passwords_off` where Passgate offers no password sign-in.
 *
 * @param {string} username
 * @returns {Promise<boolean>}
 * @throws {PasskeyClientError}
 */
export async function passwordAvailable(username) {
  const { password } = await postJSON(ENDPOINTS.passwordAvailable, { username });
  return password === true;
}

/**
 * Sign in with the password an account was imported with: a password session, which may add a passkey but not
 * make other sensitive changes. `upgrade: true` in the answer means "offer the passkey now" (upgrade()).
 * Refused with `password_incorrect` alike for an unknown username, an account without a password and a wrong
 * password.
 *
 * @param {string} username
 * @param {string} password
 * @returns {Promise<{verified: boolean, user: {id: string, username: string, displayName: string},
 *                    upgrade?: boolean}>}
 * @throws {PasskeyClientError}
 */
export async function signInWithPassword(username, password) {
  return postJSON(ENDPOINTS.passwordLogin, { username, password });
}

/** Remove the account's password, so only its passkeys (and ways back in) sign in. Needs step-up: wrap it in
 * withStepUp. Refused with `no_password` when the account has none. */
export async function removePassword() {
  return requestJSON("DELETE", ENDPOINTS.password);
}

// --- Account ------------------------------------------------------------------------------------------

/** Everything the account page shows (GET /auth/account). */
export async function getAccount() {
  return requestJSON("GET", ENDPOINTS.account);
}

/** The signed-in user's recent activity, newest first: `{events: [...]}`. */
export async function getEvents() {
  return requestJSON("GET", ENDPOINTS.events);
}

/** Change the name shown for the account, then tell passkey providers (Signal API) so their lists match. */
export async function updateDisplayName(displayName) {
  const answer = await requestJSON("PATCH", ENDPOINTS.account, { displayName });
  await signalCurrentUserDetails();
  return answer;
}

/** The signed-in user's passkeys: `{passkeys: [{id, name, nickname, provider, synced, createdAt, lastUsedAt}]}`. */
export async function listPasskeys() {
  return requestJSON("GET", ENDPOINTS.passkeys);
}

/** Stop suggesting a second passkey. */
export async function dismissNudge() {
  return postJSON(ENDPOINTS.nudgeDismiss);
}

/** Give a passkey a nickname (at most 64 characters); an empty one goes back to the provider's name. */
export async function renamePasskey(credentialId, nickname) {
  return requestJSON("PATCH", passkeyURL(credentialId), { nickname: nickname || null });
}

/**
 * Remove one of the account's passkeys, then tell passkey providers (Signal API) to drop it too.
 * Needs a recent passkey: wrap it in withStepUp. Refused with `last_passkey` when it is the only way in.
 */
export async function removePasskey(credentialId) {
  const answer = await requestJSON("DELETE", passkeyURL(credentialId));
  await signalAcceptedCredentials();
  return answer;
}

// --- Connected apps -------------------------------------------------------------------------------------

/** The applications the person allowed on the consent page: `{consents: [{clientId, name, scopes, ...}]}`. */
export async function listConnectedApps() {
  return requestJSON("GET", ENDPOINTS.consents);
}

/** Withdraw the consent given to an application; its refresh tokens stop working at once. */
export async function disconnectApp(clientId) {
  return requestJSON("DELETE", `${ENDPOINTS.consents}/${encodeURIComponent(clientId)}`);
}

function passkeyURL(credentialId) {
  return `${ENDPOINTS.passkeys}/${encodeURIComponent(credentialId)}`;
}

// --- Recovery -------------------------------------------------------------------------------------------

/** A new set of backup codes, `{codes: [...]}`, shown once; the previous set stops working. Needs step-up. */
export async function generateBackupCodes() {
  return postJSON(ENDPOINTS.backupCodes);
}

/** Sign in with a backup code: a recovery session, whose next step is adding a passkey (`register()`). */
export async function signInWithBackupCode({ username, code }) {
  return postJSON(ENDPOINTS.backupCodeSignIn, { username, code });
}

/** Set the account's email address (needs step-up); the server mails a confirmation link. */
export async function setEmail(email) {
  return postJSON(ENDPOINTS.email, { email });
}

/** Confirm an address with the token from the emailed link. */
export async function verifyEmail(token) {
  return postJSON(ENDPOINTS.emailVerify, { token });
}

/** Ask for a sign-in link to a verified address. The answer is the same whether or not it belongs to anyone. */
export async function requestSignInLink(email) {
  return postJSON(ENDPOINTS.signInLink, { email });
}

/** Sign in with the token of an emailed link, in the browser that asked for it: a recovery session. */
export async function signInWithLink(token) {
  return postJSON(ENDPOINTS.signInLinkComplete, { token });
}

// --- WebAuthn Signal API --------------------------------------------------------------------------------
// Each resolves to whether the browser was told; none ever throws, since the server's change is made either way.

/** Tell passkey providers which of this account's passkeys the server still accepts; they drop the rest. */
export async function signalAcceptedCredentials() {
  if (!hasSignal("signalAllAcceptedCredentials")) {
    return false;
  }
  try {
    const { rpId, userId, allAcceptedCredentialIds } = await requestJSON("GET", ENDPOINTS.signal);
    await PublicKeyCredential.signalAllAcceptedCredentials({ rpId, userId, allAcceptedCredentialIds });
    return true;
  } catch {
    return false;
  }
}

/** Tell passkey providers the account's current username and display name. */
export async function signalCurrentUserDetails() {
  if (!hasSignal("signalCurrentUserDetails")) {
    return false;
  }
  try {
    const { rpId, userId, name, displayName } = await requestJSON("GET", ENDPOINTS.signal);
    await PublicKeyCredential.signalCurrentUserDetails({ rpId, userId, name, displayName });
    return true;
  } catch {
    return false;
  }
}

function hasSignal(method) {
  return typeof window !== "undefined" && typeof window.PublicKeyCredential?.[method] === "function";
}

async function authenticate({ username, stepUp = false, mediation, signal }) {
  const body = stepUp ? { stepUp: true } : username ? { username } : undefined;
  const optionsJSON = await postJSON(ENDPOINTS.loginBegin, body);
  if (signal?.aborted) {
    throw new PasskeyClientError("cancelled", "The sign-in request was aborted.", { cause: signal.reason });
  }
  const publicKey = parseRequestOptions(optionsJSON);
  let credential;
  try {
    credential = await navigator.credentials.get(mediation ? { publicKey, mediation, signal } : { publicKey, signal });
  } catch (error) {
    throw fromDOMException(error, "get", signal);
  }
  if (credential === null) {
    throw new PasskeyClientError("cancelled", "No passkey was chosen.");
  }
  try {
    return await postJSON(ENDPOINTS.loginComplete, credentialToJSON(credential));
  } catch (error) {
    if (error instanceof PasskeyClientError && error.serverCode === "unknown_credential") {
      // The passkey was deleted here but still sits in the person's password manager: tell the
      // manager (WebAuthn Signal API, where available) so it stops offering it.
      signalUnknownCredential(optionsJSON.rpId, credential.id);
    }
    throw error;
  }
}

function signalUnknownCredential(rpId, credentialId) {
  if (!hasSignal("signalUnknownCredential") || !rpId) {
    return;
  }
  PublicKeyCredential.signalUnknownCredential({ rpId, credentialId }).catch(() => {});
}

function requireSupport() {
  if (!isSupported()) {
    throw new PasskeyClientError("unsupported", "This browser does not support passkeys.");
  }
}

// --- HTTP -----------------------------------------------------------------------------------------------

async function postJSON(url, body) {
  return requestJSON("POST", url, body);
}

async function requestJSON(method, url, body) {
  // Another origin's Passgate needs its cookies sent along (and allows it by CORS); this origin's never leave it.
  const credentials = baseUrl ? "include" : "same-origin";
  return (await fetchJSON(method, url, body, { credentials, headers: {} })).payload;
}

/** An app passkey API call: no cookies ever; the ceremony begun travels in the Passgate-Ceremony header. */
async function appRequest(url, body, ceremony) {
  const headers = ceremony ? { [CEREMONY_HEADER]: ceremony } : {};
  const { payload, response } = await fetchJSON("POST", url, body, { credentials: "omit", headers });
  return { payload, ceremony: response.headers.get(CEREMONY_HEADER) };
}

async function fetchJSON(method, url, body, { credentials, headers }) {
  const init = { method, credentials, headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(baseUrl + url, init);
  } catch (error) {
    throw new PasskeyClientError("network_error", "The server could not be reached.", { cause: error });
  }
  if (response.status === 204) {
    return { payload: null, response }; // done, nothing to say
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    // Not JSON (a proxy's error page, say): reported below with the status alone.
  }
  if (!response.ok) {
    throw new PasskeyClientError(
      "server_error",
      payload?.message || `The server answered ${response.status}.`,
      { serverCode: payload?.error ?? null, status: response.status },
    );
  }
  if (payload === null) {
    throw new PasskeyClientError("server_error", "The server's answer was not JSON.", { status: response.status });
  }
  return { payload, response };
}

// --- DOMException -> code ------------------------------------------------------------------------------

function fromDOMException(error, ceremony, signal) {
  if (error instanceof PasskeyClientError) {
    return error; // our own abort reason (see abortAutofill)
  }
  if (signal?.aborted) {
    // The browser rejects with the signal's reason, which may be any value the caller chose.
    return new PasskeyClientError("cancelled", "The passkey request was aborted.", { cause: error });
  }
  const name = error?.name;
  const cause = { cause: error };
  switch (name) {
    case "NotAllowedError":
    case "AbortError":
      // The spec folds "dismissed", "timed out" and "no passkey here" into one error on purpose
      // (privacy): none of them is the page's fault, and the person can simply try again.
      return new PasskeyClientError("cancelled", "The passkey request was cancelled or timed out.", cause);
    case "InvalidStateError":
      if (ceremony === "create") {
        return new PasskeyClientError(
          "already_registered",
          "This device already has a passkey for this account.",
          cause,
        );
      }
      return new PasskeyClientError("not_allowed", error.message || "The browser refused the request.", cause);
    case "NotSupportedError":
      return new PasskeyClientError("unsupported", "No authenticator here supports this request.", cause);
    case "SecurityError":
    case "ConstraintError":
      return new PasskeyClientError("not_allowed", error.message || "The browser refused the request.", cause);
    default:
      return new PasskeyClientError("unknown", error?.message || "The passkey request failed.", cause);
  }
}

// --- JSON <-> WebAuthn -------------------------------------------------------------------------------

function parseCreationOptions(json) {
  try {
    if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return {
      ...json,
      challenge: base64urlToBuffer(json.challenge),
      user: { ...json.user, id: base64urlToBuffer(json.user.id) },
      ...(json.excludeCredentials ? { excludeCredentials: json.excludeCredentials.map(descriptorFromJSON) } : {}),
    };
  } catch (error) {
    throw unreadableOptions(error);
  }
}

function parseRequestOptions(json) {
  try {
    if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return {
      ...json,
      challenge: base64urlToBuffer(json.challenge),
      ...(json.allowCredentials ? { allowCredentials: json.allowCredentials.map(descriptorFromJSON) } : {}),
    };
  } catch (error) {
    throw unreadableOptions(error);
  }
}

function unreadableOptions(error) {
  return new PasskeyClientError("server_error", "The browser could not read the server's passkey options.", {
    cause: error,
  });
}

function descriptorFromJSON(descriptor) {
  return { ...descriptor, id: base64urlToBuffer(descriptor.id) };
}

function credentialToJSON(credential) {
  if (typeof credential.toJSON === "function") {
    return credential.toJSON();
  }
  const response = credential.response;
  const json = {
    id: credential.id,
    rawId: bufferToBase64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment ?? null,
    clientExtensionResults: credential.getClientExtensionResults?.() ?? {},
  };
  if ("attestationObject" in response) {
    json.response = {
      clientDataJSON: bufferToBase64url(response.clientDataJSON),
      attestationObject: bufferToBase64url(response.attestationObject),
      transports: response.getTransports?.() ?? [],
    };
  } else {
    json.response = {
      clientDataJSON: bufferToBase64url(response.clientDataJSON),
      authenticatorData: bufferToBase64url(response.authenticatorData),
      signature: bufferToBase64url(response.signature),
      userHandle: response.userHandle ? bufferToBase64url(response.userHandle) : null,
    };
  }
  return json;
}

export function bufferToBase64url(buffer) {
  const bytes = ArrayBuffer.isView(buffer)
    ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
    : new Uint8Array(buffer);
  let binary = "";
  for (const byte of bytes) {
    binary += String.fromCharCode(byte);
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function base64urlToBuffer(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "="));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) {
    bytes[i] = binary.charCodeAt(i);
  }
  return bytes.buffer;
}
