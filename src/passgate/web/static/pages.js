/**
 * Glue for Passgate's hosted pages. Each page names itself in `<body data-page="...">`; the page's
 * elements are found by id. No inline script anywhere, so the pages can run under a strict CSP.
 */

import { wireAccount } from "./account.js";
import { t } from "./i18n.js";
import {
  autofill,
  isAutofillSupported,
  isSupported,
  passwordAvailable,
  register,
  requestSignInLink,
  signIn,
  signInWithBackupCode,
  signInWithLink,
  signInWithPassword,
  signOut,
  upgrade,
  verifyEmail,
} from "./passgate.js";
import {
  ceremony,
  checkedName,
  clearMessage,
  describe,
  navigateWithMessage,
  refuseWithoutWebAuthn,
  rememberNewPasskey,
  setBusy,
  showMessage,
} from "./ui.js";

// After these answers the link is gone (opened in another browser, it still works in the one that asked).
const LINK_USED_UP = new Set(["invalid_link"]);

const RECOVERED = t("You're signed in for now. Create a new passkey so you can sign in next time.");

const PASSKEY_ADDED = t("Passkey added. You can now sign in with it.");
const PASSKEY_MADE = t(
  "Your browser created a passkey for you. Next time, sign in with it instead of your password.",
);

// "Not now" on the passkey offer after a password sign-in: later password sign-ins in this browser go straight
// on for this long (the account page still offers a passkey).
const UPGRADE_LATER_KEY = "passgate:upgrade-later";
const UPGRADE_LATER_MS = 30 * 24 * 60 * 60 * 1000;

/** Where the sign-in and sign-up pages go once signed in: their `next` (or `return_to`), a path on this site or a
 * page of an allowed origin, as the server checked it before writing it in the page; else /account, showing
 * `message` there if there is one. */
function goOn(message) {
  const next = document.querySelector("form[data-next]")?.dataset.next ?? "";
  const local = next.startsWith("/") && !next.startsWith("//") && !next.includes("\\");
  const allowedPage = /^https?:\/\//.test(next);
  const target = local || allowedPage ? next : "/account";
  if (message && target === "/account") {
    navigateWithMessage(target, message);
  } else {
    window.location.assign(target);
  }
}

function wireSignup() {
  const form = document.getElementById("signup-form");
  const button = document.getElementById("signup-button");
  if (refuseWithoutWebAuthn(isSupported(), button)) {
    return;
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const username = checkedName(document.getElementById("username"));
    const displayName = username === null ? null : checkedName(document.getElementById("display-name"));
    if (displayName === null) {
      return;
    }
    ceremony(
      button,
      "signup",
      () => register({ username, displayName: displayName || username }),
      (answer) => {
        rememberNewPasskey(answer);
        goOn();
      },
    );
  });
}

function wireSignin() {
  const form = document.getElementById("signin-form");
  const button = document.getElementById("signin-button");
  const passwords = form.dataset.passwords === "migrate";
  const passkeys = !refuseWithoutWebAuthn(isSupported(), button);
  if (!passkeys && !passwords) {
    return;
  }
  const help = document.getElementById("signin-help");
  const passkeySignIn = async () => {
    help.hidden = true;
    const username = document.getElementById("username").value.trim();
    const failure = await ceremony(button, "signin", () => signIn({ username: username || undefined }), () => goOn());
    if (failure !== null) {
      // Closed prompt, or no passkey here for the account: the browser does not say which.
      help.hidden = failure.code !== "cancelled";
      startAutofill(); // signIn() aborted it; offer passkeys in the field again
    }
  };
  if (passwords) {
    wirePasswordSignin(form, passkeys ? passkeySignIn : null);
    if (passkeys) {
      button.addEventListener("click", passkeySignIn);
    }
  } else {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      passkeySignIn();
    });
  }
  if (passkeys) {
    startAutofill();
  }
}

/**
 * Username first: "Continue" asks the server whether to ask for a password (an account without one goes on to
 * its passkeys, `passkeySignIn`, null without WebAuthn); the password then signs in, and the browser is asked
 * for a passkey straight away (offerPasskey).
 */
function wirePasswordSignin(form, passkeySignIn) {
  const usernameInput = document.getElementById("username");
  const step = document.getElementById("password-step");
  const passwordInput = document.getElementById("password");
  const continueButton = document.getElementById("continue-button");
  const passwordButton = document.getElementById("password-button");

  let asked = null; // the username whose password the page asks for

  const showPasswordStep = (shown) => {
    asked = shown ? usernameInput.value.trim() : null;
    step.hidden = !shown;
    passwordInput.required = shown;
    continueButton.hidden = shown;
    passwordButton.hidden = !shown;
    if (!shown) {
      passwordInput.value = "";
    }
  };
  // Another username: its answer is asked for again (a password manager filling in the same one changes nothing).
  usernameInput.addEventListener("input", () => {
    if (asked !== null && usernameInput.value.trim() !== asked) {
      showPasswordStep(false);
    }
  });

  const continueWith = async (username) => {
    if (!username) {
      showMessage(t("Enter your username to continue, or sign in with a passkey."), "error");
      usernameInput.focus();
      return;
    }
    setBusy(continueButton, true);
    let asksForPassword;
    try {
      asksForPassword = await passwordAvailable(username);
    } catch (error) {
      showMessage(describe(error, "signin"), "error");
      setBusy(continueButton, false);
      return;
    }
    setBusy(continueButton, false);
    clearMessage();
    if (asksForPassword) {
      showPasswordStep(true);
      passwordInput.focus();
    } else if (passkeySignIn !== null) {
      passkeySignIn(); // the account signs in with its passkeys only
    } else {
      showMessage(describe({ code: "unsupported" }, "signin"), "error");
    }
  };

  const signInWith = async (username, password) => {
    setBusy(passwordButton, true);
    clearMessage();
    let answer;
    try {
      answer = await signInWithPassword(username, password);
    } catch (error) {
      showMessage(describe(error, "signin"), "error");
      setBusy(passwordButton, false);
      passwordInput.select();
      return;
    }
    if (answer.upgrade && isSupported()) {
      await offerPasskey();
    } else {
      goOn();
    }
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const username = usernameInput.value.trim();
    if (step.hidden) {
      continueWith(username);
    } else {
      signInWith(username, passwordInput.value);
    }
  });
}

/**
 * Right after a password sign-in: the browser may make a passkey with no prompt (upgrade). Where it made none,
 * say what a passkey is and offer to create one, unless the person said "not now" lately.
 */
async function offerPasskey() {
  showMessage(t("You're signed in."), "success");
  const result = await upgrade();
  if (result.created) {
    goOn(PASSKEY_MADE);
    return;
  }
  // already_registered: this browser's password manager holds a passkey for the account, nothing to offer.
  if (result.reason === "already_registered" || upgradeLater()) {
    goOn();
    return;
  }
  for (const element of document.querySelectorAll("#signin-form, #signin-help, main .switch")) {
    element.hidden = true;
  }
  clearMessage();
  const step = document.getElementById("upgrade-step");
  const create = document.getElementById("upgrade-create");
  step.hidden = false;
  create.focus();
  create.addEventListener("click", () =>
    ceremony(
      create,
      "add",
      () => register(),
      (answer) => {
        rememberNewPasskey(answer);
        goOn(PASSKEY_ADDED);
      },
    ),
  );
  document.getElementById("upgrade-later").addEventListener("click", () => {
    rememberUpgradeLater();
    goOn();
  });
}

function upgradeLater() {
  try {
    return Number(window.localStorage.getItem(UPGRADE_LATER_KEY)) > Date.now();
  } catch {
    return false; // storage refused (a private window, say): ask again
  }
}

function rememberUpgradeLater() {
  try {
    window.localStorage.setItem(UPGRADE_LATER_KEY, String(Date.now() + UPGRADE_LATER_MS));
  } catch {
    // Not remembered: the offer comes again next time.
  }
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
  goOn();
}

/** /recover: a backup code, or an emailed sign-in link. Both end on /account, asking for a new passkey. */
function wireRecover() {
  const codeForm = document.getElementById("recover-code-form");
  const codeButton = document.getElementById("recover-code-button");
  codeForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = document.getElementById("recover-username").value.trim();
    const code = document.getElementById("recover-code").value.trim();
    setBusy(codeButton, true);
    try {
      await signInWithBackupCode({ username, code });
    } catch (error) {
      showMessage(describe(error, "recover"), "error");
      setBusy(codeButton, false);
      return;
    }
    navigateWithMessage("/account", RECOVERED);
  });

  const emailForm = document.getElementById("recover-email-form");
  const emailButton = document.getElementById("recover-email-button");
  emailForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = document.getElementById("recover-email").value.trim();
    setBusy(emailButton, true);
    try {
      await requestSignInLink(email);
    } catch (error) {
      showMessage(describe(error, "recover"), "error");
      setBusy(emailButton, false);
      return;
    }
    setBusy(emailButton, false);
    // The same answer whether or not the address belongs to an account, like the server's.
    showMessage(
      t(
        "If {email} is the confirmed address of an account, a sign-in link is on its way. " +
          "Open it in this browser.",
        { email },
      ),
      "success",
    );
  });
}

/** The token of an emailed link, from this page's address; says so and returns null when it is missing. */
function linkToken(button) {
  const token = new URLSearchParams(window.location.search).get("token");
  if (!token) {
    showMessage(t("This page needs the full link from your email. Open the link exactly as it was sent."), "error");
    button.disabled = true;
  }
  return token;
}

/** /email/verify: nothing happens on load (mail scanners open links too); the button confirms. */
function wireVerifyEmail() {
  const button = document.getElementById("confirm-email-button");
  const token = linkToken(button);
  if (!token) {
    return;
  }
  button.addEventListener("click", async () => {
    setBusy(button, true);
    let answer;
    try {
      answer = await verifyEmail(token);
    } catch (error) {
      showMessage(describe(error, "verify"), "error");
      setBusy(button, false);
      return;
    }
    button.hidden = true;
    document.getElementById("next-step").hidden = false;
    showMessage(t("Your email address {email} is confirmed.", { email: answer.email }), "success");
  });
}

/** /recover/email: the button signs in with the link (a recovery session), then /account asks for a passkey. */
function wireEmailLink() {
  const button = document.getElementById("use-link-button");
  const token = linkToken(button);
  if (!token) {
    return;
  }
  button.addEventListener("click", async () => {
    setBusy(button, true);
    try {
      await signInWithLink(token);
    } catch (error) {
      showMessage(describe(error, "link"), "error");
      if (LINK_USED_UP.has(error.serverCode)) {
        document.getElementById("next-step").hidden = false; // the button stays disabled
      } else {
        setBusy(button, false); // not reached, rate limited...: the link still works
      }
      return;
    }
    navigateWithMessage("/account", RECOVERED);
  });
}

/** The header's sign-out button, on every page a signed-in person sees. */
function wireSignOut() {
  const button = document.getElementById("signout-button");
  if (button === null) {
    return;
  }
  button.addEventListener("click", async () => {
    setBusy(button, true);
    try {
      await signOut();
    } catch (error) {
      showMessage(describe(error, "signin"), "error");
      setBusy(button, false);
      return;
    }
    window.location.assign("/signin");
  });
}

const PAGES = {
  signup: wireSignup,
  signin: wireSignin,
  account: wireAccount,
  recover: wireRecover,
  "verify-email": wireVerifyEmail,
  "email-link": wireEmailLink,
};

wireSignOut();
PAGES[document.body.dataset.page]?.();
