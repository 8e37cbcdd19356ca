/**
 * What every hosted page shares: the message line, busy buttons, and the sentences for failures.
 * Text from the server or the person is only ever set with textContent, never parsed as HTML.
 *
 * Sentences that name the site use the name the server was configured with (`rp_name`), which every page
 * carries in `<body data-rp-name="...">`: a site that runs Passgate under its own name shows only that name.
 */

import { language, t } from "./i18n.js";

/** The site's name for sentences (always written mid-sentence, so the fallback reads well too). */
export function siteName() {
  return document.body?.dataset.rpName || t("this site");
}

// Said before the browser's prompt: people new to passkeys do not expect their device to ask.
export function beforePrompt() {
  return t(
    "Your device will ask you to confirm with your fingerprint, face, PIN or security key. " +
      "Your biometrics stay on your device: {site} never sees them.",
    { site: siteName() },
  );
}

// Said before a step-up prompt, which otherwise appears out of nowhere in the middle of a change.
export const STEP_UP_EXPLANATION = t(
  "For your security, confirm it's you before this change: your device will ask for one of your passkeys " +
    "(fingerprint, face, PIN or security key).",
);

// Shown on the next page after a navigation, so "added" survives the reload that refreshes the list.
const FLASH_KEY = "passgate:flash";

const CANCELLED = {
  signup: t("Passkey creation was cancelled. Nothing was saved."),
  // The browser says the same whether the prompt was closed or this device has no passkey for the account
  // (or no account has that username): name the likely causes, and the way on (the page adds links).
  signin: t(
    "You are not signed in: the passkey prompt was closed, or this device has no passkey for this account. " +
      "Try a passkey on another device, such as your phone, use a backup code, or create an account.",
  ),
  add: t("Adding a passkey was cancelled. Nothing was saved."),
  remove: t("Not confirmed, so the passkey was kept."),
  codes: t("Not confirmed, so no backup codes were created."),
  email: t("Not confirmed, so your email address was not changed."),
  password: t("Not confirmed, so your password was kept."),
};

const ALREADY_REGISTERED = {
  signup: t("This device already has a passkey for this site. Try signing in instead."),
  add: t(
    "This device already has a passkey for your account. To add another, use a different device or security key.",
  ),
};

const SERVER_MESSAGES = {
  username_taken: t("That username is already taken. Choose another one, or sign in if it is yours."),
  credential_exists: t("This passkey is already registered."),
  challenge_expired: t("That took too long, so the request expired. Please try again."),
  challenge_not_found: t("That request is no longer valid. Please try again."),
  unknown_credential: t(
    "This passkey is not registered here (it may have been removed). Try another passkey, or create an account.",
  ),
  user_handle_mismatch: t("This passkey does not belong to that account. Try another passkey."),
  user_not_verified: t("Your device did not confirm it is you (fingerprint, face or PIN). Please try again."),
  not_signed_in: t("Your session has ended. Please sign in again."),
  forbidden: t("You can only add passkeys to your own account."),
  origin_not_allowed: () => t("This page's address is not allowed to sign in to {site}.", { site: siteName() }),
  step_up_required: t("For your security, confirm it's you with a passkey first."),
  last_passkey: t(
    "This is your only passkey, so it can't be removed yet. First add another passkey, create backup codes " +
      "or confirm an email address, so you can still get into your account.",
  ),
  invalid_code: t("That backup code did not work. Check the username and the code: each code works only once."),
  invalid_link: t("This link no longer works: it was used already or has expired. Ask for a new one."),
  link_other_browser: t(
    "This link works only in the browser where it was requested. Open it there, " +
      "or ask for a new one from the browser you want to use.",
  ),
  email_taken: t("This email address is already confirmed for another account. Use another address."),
  rate_limited: t("Too many attempts. Please wait a few minutes, then try again."),
  // One answer for a wrong password, an unknown username and an account without a password: no hint which.
  password_incorrect: t("That username and password don't match."),
  passwords_off: t("Signing in with a password is no longer possible here. Sign in with a passkey."),
  no_password: t("Your account has no password any more."),
  account_disabled: t("This account is disabled. Contact the site's support to enable it again."),
  password_format_unknown: t(
    "This password can't be checked here. Sign in with a passkey, a backup code or an email link instead.",
  ),
};

const GENERIC = {
  not_allowed: t("Your browser did not allow the passkey request. Check the address bar and try again."),
  unsupported: t("This browser cannot use passkeys. Try an up-to-date Chrome, Edge, Safari or Firefox."),
  network_error: () => t("Could not reach {site}. Check your connection and try again.", { site: siteName() }),
  unknown: t("Something went wrong with the passkey request. Please try again."),
  refused: t("This was not accepted. Check what you entered, then try again."),
};

/** The sentence to show for a failure (`action`: signup, signin, add, remove, codes, email, ...). */
export function describe(error, action) {
  switch (error?.code) {
    case "cancelled":
      return CANCELLED[action] ?? t("Not confirmed, so nothing was changed.");
    case "already_registered":
      return ALREADY_REGISTERED[action] ?? ALREADY_REGISTERED.add;
    case "server_error":
      if (!error.serverCode) {
        // No answer from the server itself (a proxy's error page, unreadable options): the client's own
        // message is written for developers, not for the person.
        return sentence(GENERIC.unknown);
      }
      if (Object.hasOwn(SERVER_MESSAGES, error.serverCode)) {
        return sentence(SERVER_MESSAGES[error.serverCode]);
      }
      // The server's own message (invalid_request: "username is required.") is written for developers, in
      // English: the page says it in its own words (the fields are checked before anything is sent).
      return GENERIC.refused;
    default:
      return sentence(GENERIC[error?.code] ?? GENERIC.unknown);
  }
}

// A table entry is a sentence, or a function making one when it names the site.
function sentence(entry) {
  return typeof entry === "function" ? entry() : entry;
}

/** The longest username, display name or passkey name the server accepts (service/accounts.py MAX_NAME). */
export const MAX_NAME = 64;

/**
 * Shows `text` in the page's message line, which says it (aria-live) and can be closed. An error is brought into
 * view: on a phone the line may sit below the fold of a long page.
 */
export function showMessage(text, kind) {
  const element = document.getElementById("message");
  element.textContent = text;
  element.dataset.kind = kind;
  if (!text) {
    return;
  }
  element.append(dismissButton(() => clearMessage()));
  if (kind === "error") {
    element.scrollIntoView?.({ block: "nearest" });
  }
}

// An empty button (its cross is drawn by the style sheet), so the message's text stays the sentence alone.
function dismissButton(dismiss) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "dismiss";
  button.setAttribute("aria-label", t("Dismiss"));
  button.addEventListener("click", dismiss);
  return button;
}

/**
 * Says what is wrong with `input` right under it: announced, linked to the field (aria-describedby, aria-invalid),
 * in view, closed by its button or once the person changes the field. The page's message line is cleared.
 */
export function showFieldError(input, text) {
  clearMessage();
  const id = `${input.id}-error`;
  let element = document.getElementById(id);
  if (element === null) {
    element = document.createElement("p");
    element.id = id;
    element.className = "field-error";
    element.setAttribute("role", "alert");
    element.setAttribute("aria-live", "assertive");
    (input.closest(".input-row") ?? input).after(element);
    input.addEventListener("input", () => clearFieldError(input), { once: true });
  }
  element.textContent = text;
  element.append(dismissButton(() => clearFieldError(input)));
  input.setAttribute("aria-invalid", "true");
  const described = (input.getAttribute("aria-describedby") ?? "").split(" ").filter(Boolean);
  if (!described.includes(id)) {
    input.setAttribute("aria-describedby", [...described, id].join(" "));
  }
  input.focus();
  element.scrollIntoView?.({ block: "nearest" });
}

export function clearFieldError(input) {
  const id = `${input.id}-error`;
  document.getElementById(id)?.remove();
  input.removeAttribute("aria-invalid");
  const described = (input.getAttribute("aria-describedby") ?? "").split(" ").filter((name) => name && name !== id);
  if (described.length > 0) {
    input.setAttribute("aria-describedby", described.join(" "));
  } else {
    input.removeAttribute("aria-describedby");
  }
}

/**
 * The name typed in `input`, trimmed; null after saying so under the field when it is longer than the server
 * accepts (the field has no maxlength, which would cut it silently).
 */
export function checkedName(input) {
  const name = input.value.trim();
  const length = [...name].length;
  if (length > MAX_NAME) {
    showFieldError(input, t("This is {count} characters long: use at most {max}.", { count: length, max: MAX_NAME }));
    return null;
  }
  clearFieldError(input);
  return name;
}

export function clearMessage() {
  showMessage("", "none");
}

export function setBusy(button, busy) {
  button.disabled = busy;
  button.setAttribute("aria-busy", String(busy));
}

/** Go to `path` and show `text` there as a success message. */
export function navigateWithMessage(path, text) {
  window.sessionStorage.setItem(FLASH_KEY, text);
  if (path === window.location.pathname) {
    window.location.reload();
  } else {
    window.location.assign(path);
  }
}

/** Show the message left by navigateWithMessage, once. */
export function showFlash() {
  const flash = window.sessionStorage.getItem(FLASH_KEY);
  if (flash) {
    window.sessionStorage.removeItem(FLASH_KEY);
    showMessage(flash, "success");
  }
}

/** The server writes times in UTC; show them in the person's own time zone, as the page's language writes them. */
export function localizeTimes(root = document) {
  const format = new Intl.DateTimeFormat(language(), { dateStyle: "medium", timeStyle: "short" });
  for (const element of root.querySelectorAll("time[datetime]")) {
    const moment = new Date(element.dateTime);
    if (!Number.isNaN(moment.getTime())) {
      element.title = element.textContent;
      element.textContent = format.format(moment);
    }
  }
}

/**
 * Runs a modal ceremony from a button: explain, call, then `onSuccess`, or say what went wrong.
 * Resolves to the error it explained, or null once `onSuccess` ran.
 */
export async function ceremony(button, action, run, onSuccess) {
  setBusy(button, true);
  // A page that explains the prompt beside its button (sign-up) has said it before the click already.
  if (document.getElementById("before-prompt") === null) {
    showMessage(beforePrompt(), "info");
  } else {
    clearMessage();
  }
  let result;
  try {
    result = await run();
  } catch (error) {
    showMessage(describe(error, action), "error");
    setBusy(button, false);
    return error;
  }
  onSuccess(result);
  return null;
}

// The passkey just created, so the account page asks for a name for it once it has loaded.
const NEW_PASSKEY_KEY = "passgate:new-passkey";

/** Remembers the passkey a registration's answer (`{credentialId}`) names, for takeNewPasskey on /account. */
export function rememberNewPasskey(answer) {
  if (answer?.credentialId) {
    window.sessionStorage.setItem(NEW_PASSKEY_KEY, answer.credentialId);
  }
}

/** The id rememberNewPasskey left, once; null when there is none. */
export function takeNewPasskey() {
  const id = window.sessionStorage.getItem(NEW_PASSKEY_KEY);
  window.sessionStorage.removeItem(NEW_PASSKEY_KEY);
  return id;
}

/** Disables `buttons` and says why when the browser has no WebAuthn; returns whether it did. */
export function refuseWithoutWebAuthn(supported, ...buttons) {
  if (supported) {
    return false;
  }
  showMessage(GENERIC.unsupported, "error");
  for (const button of buttons) {
    button.disabled = true;
  }
  return true;
}
