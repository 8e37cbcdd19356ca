/**
 * The account page: passkeys (add, rename, remove), the password an account was imported with (remove), the
 * display name, backup codes, the email address, connected apps (disconnect).
 *
 * The server renders the page; this wires its controls to the JSON API through passgate.js. Changes the
 * server guards with a step-up (removing a passkey, backup codes, email, adding a passkey) first try, and
 * on `step_up_required` explain, ask for a passkey, and try once more (withStepUp).
 *
 * After each change (or its refusal) the activity list and the passkeys' "last used" are read again from the
 * server (refreshActivity); adding a passkey loads the page anew. Sign-out is the header's (pages.js).
 *
 * In a recovery session (signed in with a backup code or an email link) the server renders those controls
 * disabled with the reason: a step-up there would ask for a passkey the person no longer has.
 */

import {
  disconnectApp,
  dismissNudge,
  generateBackupCodes,
  isSupported,
  register,
  removePasskey,
  removePassword,
  renamePasskey,
  setEmail,
  signalAcceptedCredentials,
  updateDisplayName,
  withStepUp,
} from "./passgate.js";
import { t, tn } from "./i18n.js";
import {
  STEP_UP_EXPLANATION,
  beforePrompt,
  ceremony,
  checkedName,
  clearFieldError,
  clearMessage,
  describe,
  localizeTimes,
  navigateWithMessage,
  refuseWithoutWebAuthn,
  setBusy,
  rememberNewPasskey,
  showFlash,
  showMessage,
  takeNewPasskey,
} from "./ui.js";

export function wireAccount() {
  showFlash();
  localizeTimes();
  wireNudge();
  wireAddPasskey();
  wireCreatePasskeyLinks();
  for (const item of document.querySelectorAll("#passkeys li.passkey")) {
    wirePasskey(item);
  }
  const created = takeNewPasskey();
  offerToName(created);
  offerToRemoveLost(created);
  wirePassword();
  wireDisplayName();
  wireBackupCodes();
  wireEmail();
  for (const item of document.querySelectorAll("#connected-apps li.connected-app")) {
    wireConnectedApp(item);
  }
  // Passkeys removed elsewhere (another browser, an admin) disappear from this browser's password manager.
  signalAcceptedCredentials();
}

// Counts the refreshes asked for: an answer that arrives after a newer one was asked for is dropped.
let refreshes = 0;

/**
 * The activity list and each passkey's "last used" as the server has them now, without reloading the page.
 * Read from the account page itself, so the words of the activity stay the server's, in the page's language;
 * the rest of the page, and the focus, stay as they are. Failing to read leaves the lists as they were: the
 * change itself went through, and the next load shows it.
 */
async function refreshActivity() {
  const asked = ++refreshes;
  let page;
  try {
    const response = await fetch(window.location.pathname + window.location.search, {
      headers: { Accept: "text/html" },
    });
    if (!response.ok || response.redirected) {
      return;
    }
    page = new DOMParser().parseFromString(await response.text(), "text/html");
  } catch {
    return;
  }
  const activity = page.getElementById("activity-section");
  if (asked !== refreshes || activity === null) {
    return;
  }
  const fresh = [document.adoptNode(activity)];
  document.getElementById("activity-section").replaceWith(fresh[0]);
  for (const item of document.querySelectorAll("#passkeys li.passkey")) {
    const id = CSS.escape(item.dataset.credentialId);
    const lastUsed = page.querySelector(`#passkeys li.passkey[data-credential-id="${id}"] dd.last-used`);
    if (lastUsed !== null) {
      fresh.push(document.adoptNode(lastUsed));
      item.querySelector("dd.last-used").replaceWith(lastUsed);
    }
  }
  for (const element of fresh) {
    localizeTimes(element);
  }
}

/** `action()`, then the activity as the server recorded it, whether the action went through or was refused. */
async function recorded(action) {
  try {
    return await action();
  } finally {
    refreshActivity();
  }
}

/** Run `action`, stepping up first when the server asks; `creates` when a create() prompt follows. */
function confirmingIfNeeded(action, { creates = false } = {}) {
  return withStepUp(action, {
    beforeStepUp: () => showMessage(STEP_UP_EXPLANATION, "info"),
    afterStepUp: () => (creates ? showMessage(beforePrompt(), "info") : clearMessage()),
  });
}

function wireNudge() {
  const nudge = document.getElementById("second-passkey-nudge");
  if (nudge === null) {
    return;
  }
  const button = document.getElementById("dismiss-nudge");
  button.addEventListener("click", async () => {
    setBusy(button, true);
    try {
      await dismissNudge();
    } catch (error) {
      showMessage(describe(error, "nudge"), "error");
      setBusy(button, false);
      return;
    }
    nudge.remove();
  });
}

/** Every "add / create a passkey" button: the main one, the banners' and the one beside a last removal. */
function wireAddPasskey() {
  const buttons = [...document.querySelectorAll("button.add-passkey")];
  if (refuseWithoutWebAuthn(isSupported(), ...buttons)) {
    return;
  }
  for (const button of buttons) {
    button.addEventListener("click", () => {
      ceremony(
        button,
        "add",
        () => confirmingIfNeeded(() => register(), { creates: true }),
        (answer) => {
          rememberNewPasskey(answer);
          if (document.getElementById("recovery-banner") !== null) {
            window.sessionStorage.setItem(RECOVERED_KEY, "1");
          }
          navigateWithMessage("/account", t("Passkey added. You can now sign in with it."));
        },
      );
    });
  }
}

/** The "create a passkey" links beside locked settings lead to the add-passkey button and highlight it. */
function wireCreatePasskeyLinks() {
  const button = document.getElementById("add-passkey");
  for (const link of document.querySelectorAll("a.create-passkey-link")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      button.scrollIntoView({ block: "center" });
      button.focus();
      button.classList.add("highlighted");
    });
  }
}

/** What removing the only passkey leaves, from what the page shows of the other ways back in. */
function withoutPasskeyConsequence() {
  const codes = Number(document.getElementById("codes-remaining").dataset.count) > 0;
  const email = document.getElementById("email-status").dataset.state === "verified";
  if (codes && !email) {
    return t("Without it, you will need one of your backup codes to sign in.");
  }
  if (email && !codes) {
    return t("Without it, you will need a sign-in link sent to your email address to sign in.");
  }
  return t("Without it, you will need a backup code or a sign-in link sent to your email address to sign in.");
}

function showNoPasskeyBanner() {
  document.getElementById("second-passkey-nudge")?.remove();
  // The password stays until there is a passkey again.
  const offer = document.getElementById("password-remove-offer");
  if (offer !== null) {
    offer.hidden = true;
    document.getElementById("password-needs-passkey").hidden = false;
  }
  const banner = document.getElementById("no-passkey-banner");
  if (banner !== null) {
    banner.hidden = false;
    banner.scrollIntoView({ block: "nearest" });
  }
}

function wirePasskey(item) {
  const credentialId = item.dataset.credentialId;
  const label = item.querySelector(".passkey-label");
  const provider = item.querySelector(".passkey-provider");
  const renameForm = item.querySelector(".rename-form");
  const nicknameInput = renameForm.querySelector(".rename-input");
  const saveButton = renameForm.querySelector(".rename-save");
  const removeConfirm = item.querySelector(".remove-confirm");
  const confirmButton = removeConfirm.querySelector(".confirm-remove");
  const onlyWarning = removeConfirm.querySelector(".only-passkey-warning");
  let nickname = nicknameInput.value;

  item.querySelector(".rename").addEventListener("click", () => {
    removeConfirm.hidden = true;
    renameForm.hidden = false;
    nicknameInput.focus();
    nicknameInput.select();
  });
  const renameButton = item.querySelector(".rename");
  const cancelRename = () => {
    nicknameInput.value = nickname;
    clearFieldError(nicknameInput);
    renameForm.hidden = true;
    renameButton.focus();
  };
  renameForm.querySelector(".rename-cancel").addEventListener("click", cancelRename);
  closeOnEscape(renameForm, cancelRename);
  renameForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const wanted = checkedName(nicknameInput);
    if (wanted === null) {
      return;
    }
    setBusy(saveButton, true);
    try {
      await recorded(() => renamePasskey(credentialId, wanted));
    } catch (error) {
      showMessage(describe(error, "rename"), "error");
      setBusy(saveButton, false);
      return;
    }
    setBusy(saveButton, false);
    nickname = wanted;
    label.textContent = wanted || item.dataset.defaultLabel;
    provider.hidden = !wanted;
    renameForm.hidden = true;
    renameButton.focus();
    showMessage(
      wanted ? t("Passkey renamed to “{name}”.", { name: wanted }) : t("The passkey's name was reset."),
      "success",
    );
  });

  item.querySelector(".remove").addEventListener("click", () => {
    // Counted now, not at load: other passkeys may have been removed since.
    const only = item.parentElement.querySelectorAll("li.passkey").length === 1;
    removeConfirm.querySelector(".remove-question").hidden = only;
    onlyWarning.hidden = !only;
    onlyWarning.querySelector(".only-passkey-consequence").textContent = only ? withoutPasskeyConsequence() : "";
    removeConfirm.querySelector(".add-first").hidden = !only;
    confirmButton.textContent = only ? t("Remove my only passkey") : t("Remove passkey");
    renameForm.hidden = true;
    removeConfirm.hidden = false;
    confirmButton.focus();
  });
  const keep = () => {
    removeConfirm.hidden = true;
    item.querySelector(".remove").focus();
  };
  removeConfirm.querySelector(".cancel-remove").addEventListener("click", keep);
  closeOnEscape(removeConfirm, keep);
  confirmButton.addEventListener("click", async () => {
    setBusy(confirmButton, true);
    try {
      await recorded(() => confirmingIfNeeded(() => removePasskey(credentialId)));
    } catch (error) {
      showMessage(describe(error, "remove"), "error");
      setBusy(confirmButton, false);
      return;
    }
    const list = item.parentElement;
    item.remove();
    // Focus would be lost with the removed row: it goes to the list's heading, the message says what happened.
    document.getElementById("passkeys-title").focus();
    showMessage(t("Passkey “{name}” removed.", { name: label.textContent }), "success");
    if (list.querySelector("li.passkey") === null) {
      const empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = t("You have no passkeys. Add one so you can sign in again.");
      list.append(empty);
      showNoPasskeyBanner();
    }
  });
}

// Set when a passkey is created in a recovery session: the passkeys from before may be on the lost device.
const RECOVERED_KEY = "passgate:recovered";

/** After a recovery sign-in and a new passkey (`created`): offer to remove the other passkeys, at once. */
function offerToRemoveLost(created) {
  const recovered = window.sessionStorage.getItem(RECOVERED_KEY) !== null;
  window.sessionStorage.removeItem(RECOVERED_KEY);
  const others = [...document.querySelectorAll("#passkeys li.passkey")].filter(
    (item) => item.dataset.credentialId !== created,
  );
  const offer = document.getElementById("lost-devices-offer");
  if (!recovered || !created || others.length === 0) {
    return;
  }
  offer.hidden = false;
  const remove = document.getElementById("remove-lost");
  document.getElementById("keep-lost").addEventListener("click", () => {
    offer.hidden = true;
  });
  remove.addEventListener("click", async () => {
    setBusy(remove, true);
    for (const item of others) {
      try {
        await recorded(() => confirmingIfNeeded(() => removePasskey(item.dataset.credentialId)));
      } catch (error) {
        showMessage(describe(error, "remove"), "error");
        setBusy(remove, false);
        return;
      }
      item.remove();
    }
    offer.hidden = true;
    showMessage(tn("{count} passkey removed.", "{count} passkeys removed.", others.length), "success");
    document.getElementById("passkeys-title").focus();
  });
}

/** Escape inside an inline form or question closes it as its cancel button does. */
function closeOnEscape(element, close) {
  element.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !element.hidden) {
      event.preventDefault();
      close();
    }
  });
}

/** Right after a passkey is created: say which provider holds it, and open its name field. */
function offerToName(credentialId) {
  const item = credentialId && document.querySelector(`#passkeys li.passkey[data-credential-id="${credentialId}"]`);
  if (!item) {
    return;
  }
  const provider = item.dataset.provider;
  showMessage(
    provider
      ? t("Passkey added in {provider}. Give it a name you will recognize, or keep this one.", { provider })
      : t("Passkey added. Give it a name you will recognize, such as the device it is on."),
    "success",
  );
  item.querySelector(".rename").click();
}

/** Remove password: needs a passkey confirmation (a password session always asks for one), then it is gone. */
function wirePassword() {
  const button = document.getElementById("remove-password");
  if (button === null) {
    return;
  }
  button.addEventListener("click", async () => {
    setBusy(button, true);
    try {
      await recorded(() => confirmingIfNeeded(() => removePassword()));
    } catch (error) {
      showMessage(describe(error, "password"), "error");
      setBusy(button, false);
      return;
    }
    document.getElementById("password-section").remove();
    // The confirmation signed this browser in with the passkey: the password session's banner is out of date.
    document.getElementById("password-banner")?.remove();
    showMessage(t("Your password is removed. From now on you sign in with your passkeys."), "success");
  });
}

function wireDisplayName() {
  const form = document.getElementById("display-name-form");
  const input = document.getElementById("display-name-input");
  const button = document.getElementById("display-name-save");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const displayName = checkedName(input);
    if (displayName === null) {
      return;
    }
    setBusy(button, true);
    let answer;
    try {
      answer = await recorded(() => updateDisplayName(displayName));
    } catch (error) {
      showMessage(describe(error, "profile"), "error");
      setBusy(button, false);
      return;
    }
    setBusy(button, false);
    const { username, displayName: saved } = answer.user;
    const shown = document.getElementById("account-display-name");
    shown.textContent = `(${saved})`;
    shown.hidden = saved === username;
    const nav = document.getElementById("nav-user");
    if (nav !== null) {
      nav.textContent = saved;
    }
    input.value = saved;
    showMessage(t("Display name saved."), "success");
  });
}

function codesLeft(count) {
  if (count === 0) {
    return t("You have no backup codes.");
  }
  return tn("{count} unused backup code left.", "{count} unused backup codes left.", count);
}

function wireBackupCodes() {
  const button = document.getElementById("generate-codes");
  const box = document.getElementById("backup-codes");
  const list = document.getElementById("backup-codes-list");
  const remaining = document.getElementById("codes-remaining");
  const confirm = document.getElementById("replace-codes-confirm");
  let codes = [];
  // Unused codes are replaced only once the person says so.
  button.addEventListener("click", () => {
    if (Number(remaining.dataset.count) > 0) {
      confirm.hidden = false;
      document.getElementById("replace-codes").focus();
    } else {
      generate();
    }
  });
  document.getElementById("replace-codes").addEventListener("click", () => {
    confirm.hidden = true;
    generate();
  });
  const keepCodes = () => {
    confirm.hidden = true;
    button.focus();
  };
  document.getElementById("keep-codes").addEventListener("click", keepCodes);
  closeOnEscape(confirm, keepCodes);
  const generate = async () => {
    setBusy(button, true);
    try {
      ({ codes } = await recorded(() => confirmingIfNeeded(() => generateBackupCodes())));
    } catch (error) {
      showMessage(describe(error, "codes"), "error");
      setBusy(button, false);
      return;
    }
    setBusy(button, false);
    list.replaceChildren(
      ...codes.map((code) => {
        const entry = document.createElement("li");
        entry.textContent = code;
        return entry;
      }),
    );
    box.hidden = false;
    remaining.textContent = codesLeft(codes.length);
    remaining.dataset.count = String(codes.length);
    button.textContent = t("Replace backup codes");
    showMessage(t("New backup codes created. Store them now: they will not be shown again."), "success");
    box.scrollIntoView({ block: "nearest" });
  };
  document.getElementById("download-codes").addEventListener("click", () => {
    const file = new Blob([`${codes.join("\n")}\n`], { type: "text/plain" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(file);
    link.download = "backup-codes.txt";
    link.click();
    URL.revokeObjectURL(link.href);
  });
  document.getElementById("print-codes").addEventListener("click", () => window.print());
  // Once stored, the codes leave the screen (they are not shown again).
  document.getElementById("codes-saved").addEventListener("click", () => {
    box.hidden = true;
    list.replaceChildren();
    codes = [];
    showMessage(t("Your backup codes are saved. Each works once, if you lose your passkeys."), "success");
    button.focus();
  });
  document.getElementById("copy-codes").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(codes.join("\n"));
    } catch {
      showMessage(t("Copying is not allowed here: select the codes and copy them yourself."), "error");
      return;
    }
    showMessage(t("Backup codes copied. Paste them somewhere safe."), "success");
  });
}

function wireEmail() {
  const form = document.getElementById("email-form");
  const input = document.getElementById("email-input");
  const button = document.getElementById("email-save");
  const status = document.getElementById("email-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const email = input.value.trim();
    setBusy(button, true);
    try {
      await recorded(() => confirmingIfNeeded(() => setEmail(email)));
    } catch (error) {
      showMessage(describe(error, "email"), "error");
      setBusy(button, false);
      return;
    }
    setBusy(button, false);
    status.dataset.state = "unverified";
    status.textContent = t("Not verified yet: open the link we sent to {email} to confirm it.", { email });
    showMessage(t("We sent a confirmation link to {email}. Open it to finish.", { email }), "success");
  });
}

/** Disconnect: the app's consent is withdrawn and it loses offline access; it asks again next time. */
function wireConnectedApp(item) {
  const button = item.querySelector(".disconnect");
  const name = item.querySelector(".connected-app-name").textContent;
  button.addEventListener("click", async () => {
    setBusy(button, true);
    try {
      await recorded(() => disconnectApp(item.dataset.clientId));
    } catch (error) {
      showMessage(describe(error, "disconnect"), "error");
      setBusy(button, false);
      return;
    }
    const list = item.parentElement;
    item.remove();
    showMessage(t("{name} is disconnected. It will ask for your permission again next time.", { name }), "success");
    if (list.querySelector("li.connected-app") === null) {
      const empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = t("No apps are connected to your account.");
      list.append(empty);
    }
  });
}
