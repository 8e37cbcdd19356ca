/**
 * Glue for Passgate's hosted pages. Each page names itself in `<body data-page="...">`; the page's
 * elements are found by id. No inline script anywhere, so the pages can run under a strict CSP.
 */

import { autofill, isAutofillSupported, isSupported, register, signIn, signOut } from "./passgate.js";

// Said before the browser's prompt: people new to passkeys do not expect their device to ask.
const BEFORE_PROMPT =
  "Your device will ask you to confirm with your fingerprint, face, PIN or security key. " +
  "Passgate never sees your biometrics.";

// Shown on /account after a reload, so "added" survives the navigation that refreshes the list.
const FLASH_KEY = "passgate:flash";

const CANCELLED = {
  signup: "Passkey creation was cancelled. Nothing was saved.",
  signin: "Sign-in was cancelled.",
  add: "Adding a passkey was cancelled. Nothing was saved.",
};

const ALREADY_REGISTERED = {
  signup: "This device already has a passkey for this site. Try signing in instead.",
  add: "This device already has a passkey for your account. To add another, use a different device or security key.",
};

const SERVER_MESSAGES = {
  username_taken: "That username is already taken. Choose another one, or sign in if it is yours.",
  credential_exists: "This passkey is already registered.",
  challenge_expired: "That took too long, so the request expired. Please try again.",
  challenge_not_found: "That request is no longer valid. Please try again.",
  unknown_credential:
    "This passkey is not registered here (it may have been removed). Try another passkey, or create an account.",
  user_handle_mismatch: "This passkey does not belong to that account. Try another passkey.",
  user_not_verified: "Your device did not confirm it is you (fingerprint, face or PIN). Please try again.",
  not_signed_in: "Your session has ended. Please sign in again.",
  forbidden: "You can only add passkeys to your own account.",
  origin_not_allowed: "This page's address is not allowed to use Passgate.",
};

const GENERIC = {
  not_allowed: "Your browser did not allow the passkey request. Check the address bar and try again.",
  unsupported: "This browser cannot use passkeys. Try an up-to-date Chrome, Edge, Safari or Firefox.",
  network_error: "Passgate could not be reached. Check your connection and try again.",
  unknown: "Something went wrong with the passkey request. Please try again.",
};

/** The sentence to show for a failed ceremony (`action`: signup, signin or add). */
function describe(error, action) {
  switch (error?.code) {
    case "cancelled":
      return CANCELLED[action];
    case "already_registered":
      return ALREADY_REGISTERED[action] ?? ALREADY_REGISTERED.add;
    case "server_error":
      // invalid_request messages name the field ("username is required."), so they are worth showing.
      return SERVER_MESSAGES[error.serverCode] ?? error.message ?? GENERIC.unknown;
    default:
      return GENERIC[error?.code] ?? GENERIC.unknown;
  }
}

function showMessage(text, kind) {
  const element = document.getElementById("message");
  element.textContent = text;
  element.dataset.kind = kind;
}

function clearMessage() {
  showMessage("", "none");
}

function setBusy(button, busy) {
  button.disabled = busy;
  button.setAttribute("aria-busy", String(busy));
}

function goToAccount() {
  window.location.assign("/account");
}

/** Runs a modal ceremony from a button: explain, call, then go to /account or say what went wrong. */
async function ceremony(button, action, run, onSuccess = goToAccount) {
  setBusy(button, true);
  showMessage(BEFORE_PROMPT, "info");
  try {
    await run();
  } catch (error) {
    showMessage(describe(error, action), "error");
    setBusy(button, false);
    return false;
  }
  onSuccess();
  return true;
}

function refuseWithoutWebAuthn(...buttons) {
  if (isSupported()) {
    return false;
  }
  showMessage(GENERIC.unsupported, "error");
  for (const button of buttons) {
    button.disabled = true;
  }
  return true;
}

function wireSignup() {
  const form = document.getElementById("signup-form");
  const button = document.getElementById("signup-button");
  if (refuseWithoutWebAuthn(button)) {
    return;
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const username = document.getElementById("username").value.trim();
    const displayName = document.getElementById("display-name").value.trim();
    ceremony(button, "signup", () => register({ username, displayName: displayName || username }));
  });
}

function wireSignin() {
  const form = document.getElementById("signin-form");
  const button = document.getElementById("signin-button");
  if (refuseWithoutWebAuthn(button)) {
    return;
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = document.getElementById("username").value.trim();
    const signedIn = await ceremony(button, "signin", () => signIn({ username: username || undefined }));
    if (!signedIn) {
      startAutofill(); // signIn() aborted it; offer passkeys in the field again
    }
  });
  startAutofill();
}

async function startAutofill() {
  if (!(await isAutofillSupported())) {
    return;
  }
  try {
    await autofill();
  } catch (error) {
    // Replaced by the button's request, or nothing picked: not worth a word.
    if (error.code !== "cancelled" && error.code !== "unsupported") {
      showMessage(describe(error, "signin"), "error");
    }
    return;
  }
  clearMessage();
  goToAccount();
}

function wireAccount() {
  const addButton = document.getElementById("add-passkey");
  const signOutButton = document.getElementById("signout-button");
  const flash = window.sessionStorage.getItem(FLASH_KEY);
  if (flash) {
    window.sessionStorage.removeItem(FLASH_KEY);
    showMessage(flash, "success");
  }
  signOutButton.addEventListener("click", async () => {
    setBusy(signOutButton, true);
    try {
      await signOut();
    } catch (error) {
      showMessage(describe(error, "signin"), "error");
      setBusy(signOutButton, false);
      return;
    }
    window.location.assign("/signin");
  });
  if (refuseWithoutWebAuthn(addButton)) {
    return;
  }
  addButton.addEventListener("click", () => {
    ceremony(
      addButton,
      "add",
      () => register(),
      () => {
        window.sessionStorage.setItem(FLASH_KEY, "Passkey added. You can now sign in with it.");
        window.location.reload();
      },
    );
  });
}

const PAGES = { signup: wireSignup, signin: wireSignin, account: wireAccount };

PAGES[document.body.dataset.page]?.();
