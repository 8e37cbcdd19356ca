/**
 * Passgate's web components: the common passkey screens as custom elements any page can place.
 *
 *     <script type="module">
 *       import { configure } from "https://auth.example.com/static/passgate-elements.js";
 *       configure({ baseUrl: "https://auth.example.com" });   // when the page is on another origin
 *     </script>
 *     <passgate-sign-up></passgate-sign-up>
 *     <passgate-sign-in></passgate-sign-in>
 *     <passgate-passkeys></passgate-passkeys>
 *
 * Events (bubbling, composed), for the page to go on:
 *
 *     passgate:signed-in       detail {user, newAccount}: after signing in, and after signing up (newAccount true)
 *     passgate:passkey-added   detail {credentialId}
 *     passgate:passkey-removed detail {credentialId}
 *     passgate:error           detail {error}: a PasskeyClientError, also announced in the element's live region
 *
 * Theming: CSS custom properties (--passgate-font, --passgate-color, --passgate-background,
 * --passgate-accent, --passgate-accent-text, --passgate-error, --passgate-border, --passgate-radius,
 * --passgate-gap) and parts (::part(button), ::part(input), ::part(label), ::part(error), ::part(list),
 * ::part(item), ::part(remove)).
 *
 * Texts: every string shown is in TEXTS; setTexts({...}) replaces some of them (a page's own language), and
 * the elements on the page show the new ones at once.
 */

import {
  PasskeyClientError,
  configure,
  listPasskeys,
  register,
  removePasskey,
  signIn,
  withStepUp,
} from "./passgate.js";

export { configure };

// On Passgate's own pages, the page's language: its translations of these texts are in the page's
// <script type="application/json" id="passgate-messages"> (the same catalogs as the pages'). Elsewhere: English.
function pageMessages() {
  try {
    return JSON.parse(document.getElementById("passgate-messages")?.textContent ?? "{}");
  } catch {
    return {};
  }
}

const PAGE_MESSAGES = pageMessages();

function translated(message) {
  const text = PAGE_MESSAGES[message];
  return typeof text === "string" && text ? text : message;
}

export const TEXTS = {
  signIn: translated("Sign in with a passkey"),
  signUp: translated("Create account"),
  username: translated("Username"),
  displayName: translated("Your name"),
  addPasskey: translated("Add a passkey"),
  remove: translated("Remove"),
  removeLabel: translated("Remove {name}"),
  noPasskeys: translated("No passkeys yet."),
  created: translated("Created {date}"),
  cancelled: translated("The passkey request was cancelled. You can try again."),
  alreadyRegistered: translated("This device already has a passkey for this account."),
  unsupported: translated("This browser does not support passkeys."),
  networkError: translated("The server could not be reached. Check your connection and try again."),
  notSignedIn: translated("Sign in to see your passkeys."),
  failed: translated("Something went wrong: {message}"),
};

// The elements on the page now: they show new texts at once.
const shown = new Set();

/** Replace some of TEXTS (the others stay); the elements on the page show them at once. */
export function setTexts(texts) {
  Object.assign(TEXTS, texts);
  for (const element of shown) {
    element.render();
  }
}

function text(key, values = {}) {
  return TEXTS[key].replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** What an element says of a failure: a closed set of codes, so the messages stay in TEXTS. */
export function describeError(error) {
  if (!(error instanceof PasskeyClientError)) {
    return text("failed", { message: error?.message ?? String(error) });
  }
  switch (error.code) {
    case "cancelled":
      return text("cancelled");
    case "already_registered":
      return text("alreadyRegistered");
    case "unsupported":
      return text("unsupported");
    case "network_error":
      return text("networkError");
    default:
      return error.serverCode === "not_signed_in" ? text("notSignedIn") : text("failed", { message: error.message });
  }
}

const STYLE = `
  :host { display: block; font: var(--passgate-font, inherit); color: var(--passgate-color, inherit);
          background: var(--passgate-background, transparent); }
  :host([hidden]) { display: none; }
  form, ul { display: grid; gap: var(--passgate-gap, 0.75rem); margin: 0; padding: 0; }
  label { display: grid; gap: 0.25rem; }
  input { font: inherit; padding: 0.5rem; border: 1px solid var(--passgate-border, #8a8a8a);
          border-radius: var(--passgate-radius, 0.375rem); }
  button { font: inherit; padding: 0.5rem 1rem; border: 0; cursor: pointer;
           border-radius: var(--passgate-radius, 0.375rem);
           background: var(--passgate-accent, #2f5bd3); color: var(--passgate-accent-text, #fff); }
  button:disabled { opacity: 0.6; cursor: progress; }
  li { display: flex; gap: var(--passgate-gap, 0.75rem); align-items: center; justify-content: space-between;
       list-style: none; padding: 0.5rem 0; border-bottom: 1px solid var(--passgate-border, #8a8a8a); }
  .error { color: var(--passgate-error, #b3261e); min-height: 1lh; margin: 0; }
`;

const EVENT_OPTIONS = { bubbles: true, composed: true };

class PasskeyElement extends HTMLElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" });
  }

  connectedCallback() {
    shown.add(this);
    this.render();
  }

  disconnectedCallback() {
    shown.delete(this);
  }

  /** The element's shadow content: STYLE, `body` (HTML), and the live region errors are announced in. */
  mount(body) {
    this.shadowRoot.innerHTML = `<style>${STYLE}</style>${body}<p class="error" part="error" role="alert"
      aria-live="assertive"></p>`;
  }

  announce(message) {
    this.shadowRoot.querySelector(".error").textContent = message;
  }

  fail(error) {
    this.announce(describeError(error));
    this.dispatchEvent(new CustomEvent("passgate:error", { ...EVENT_OPTIONS, detail: { error } }));
  }

  /** Runs `action` with `button` disabled and any earlier error cleared; a failure is announced. */
  async busy(button, action) {
    button.disabled = true;
    this.announce("");
    button.setAttribute("aria-busy", "true");
    try {
      return await action();
    } catch (error) {
      this.fail(error);
      return undefined;
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }
}

/** A button that signs in with any passkey for the site (`username` attribute: only that account's). */
export class PasskeySignIn extends PasskeyElement {
  render() {
    this.mount(`<button type="button" part="button"></button>`);
    const button = this.shadowRoot.querySelector("button");
    button.textContent = text("signIn");
    button.addEventListener("click", () =>
      this.busy(button, async () => {
        const username = this.getAttribute("username") || undefined;
        const answer = await signIn({ username });
        this.dispatchEvent(
          new CustomEvent("passgate:signed-in", { ...EVENT_OPTIONS, detail: { user: answer.user, newAccount: false } }),
        );
      }),
    );
  }
}

/** A form that creates an account with a passkey, and signs it in. */
export class PasskeySignUp extends PasskeyElement {
  render() {
    this.mount(`<form part="form">
      <label part="label"><span data-text="username"></span>
        <input name="username" part="input" required maxlength="64" autocomplete="username" autocapitalize="none"></label>
      <label part="label"><span data-text="displayName"></span>
        <input name="displayName" part="input" maxlength="64" autocomplete="name"></label>
      <button type="submit" part="button" data-text="signUp"></button>
    </form>`);
    for (const node of this.shadowRoot.querySelectorAll("[data-text]")) {
      node.textContent = text(node.dataset.text);
    }
    const form = this.shadowRoot.querySelector("form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const username = form.elements.username.value.trim();
      const displayName = form.elements.displayName.value.trim() || username;
      this.busy(form.querySelector("button"), async () => {
        const answer = await register({ username, displayName });
        this.dispatchEvent(
          new CustomEvent("passgate:signed-in", { ...EVENT_OPTIONS, detail: { user: answer.user, newAccount: true } }),
        );
      });
    });
  }
}

/** The signed-in person's passkeys: the list, a button to add one, and one to remove each. */
export class PasskeyList extends PasskeyElement {
  render() {
    this.mount(`<ul part="list" aria-live="polite"></ul><button type="button" part="button add"></button>`);
    const add = this.shadowRoot.querySelector("button");
    add.textContent = text("addPasskey");
    add.addEventListener("click", () =>
      this.busy(add, async () => {
        const answer = await register();
        await this.refresh();
        this.dispatchEvent(
          new CustomEvent("passgate:passkey-added", { ...EVENT_OPTIONS, detail: { credentialId: answer.credentialId } }),
        );
      }),
    );
    // After the module script that imported this one has run: it may call configure() first.
    queueMicrotask(() => this.refresh().catch((error) => this.fail(error)));
  }

  /** Reads the passkeys again and shows them. */
  async refresh() {
    const { passkeys } = await listPasskeys();
    const list = this.shadowRoot.querySelector("ul");
    list.replaceChildren(...passkeys.map((passkey) => this.item(passkey)));
    if (passkeys.length === 0) {
      const empty = document.createElement("li");
      empty.setAttribute("part", "item empty");
      empty.textContent = text("noPasskeys");
      list.append(empty);
    }
  }

  item(passkey) {
    const item = document.createElement("li");
    item.setAttribute("part", "item");
    item.dataset.credentialId = passkey.id;
    const name = document.createElement("span");
    name.setAttribute("part", "name");
    name.textContent = passkey.name;
    const created = document.createElement("small");
    created.setAttribute("part", "created");
    created.textContent = text("created", {
      date: new Date(passkey.createdAt).toLocaleDateString(document.documentElement.lang || undefined),
    });
    const remove = document.createElement("button");
    remove.type = "button";
    remove.setAttribute("part", "button remove");
    remove.textContent = text("remove");
    remove.setAttribute("aria-label", text("removeLabel", { name: passkey.name }));
    remove.addEventListener("click", () =>
      this.busy(remove, async () => {
        await withStepUp(() => removePasskey(passkey.id));
        await this.refresh();
        this.dispatchEvent(
          new CustomEvent("passgate:passkey-removed", { ...EVENT_OPTIONS, detail: { credentialId: passkey.id } }),
        );
      }),
    );
    item.append(name, created, remove);
    return item;
  }
}

const ELEMENTS = {
  "passgate-sign-in": PasskeySignIn,
  "passgate-sign-up": PasskeySignUp,
  "passgate-passkeys": PasskeyList,
};

for (const [name, element] of Object.entries(ELEMENTS)) {
  if (!customElements.get(name)) {
    customElements.define(name, element);
  }
}
