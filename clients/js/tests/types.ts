// Compiled with `tsc --noEmit`: the declarations describe the module as a page uses it.
import {
  configure,
  PasskeyClientError,
  register,
  registerForApp,
  signIn,
  signInToApp,
  listPasskeys,
  withStepUp,
  removePasskey,
  passwordAvailable,
  signInWithPassword,
  upgrade,
  removePassword,
} from "../passgate.js";
import { setTexts, TEXTS } from "../passgate-elements.js";

const configuration: { baseUrl: string } = configure({ baseUrl: "https://auth.example.com" });
configure();
const forApp: string | null = configure({ baseUrl: "https://auth.example.com", appId: "shop" }).appId;

async function appFlow(registrationToken: string): Promise<string> {
  const added = await registerForApp({ registrationToken });
  const { token } = await signInToApp({ userId: "u-42" });
  return added.credentialId + token + forApp;
}
appFlow("t").catch(() => null);

async function flow(): Promise<string> {
  const created = await register({ username: "ada", displayName: "Ada Lovelace" });
  const signedIn = await signIn();
  const { passkeys } = await listPasskeys();
  await withStepUp(() => removePasskey(passkeys[0].id));
  return created.credentialId + signedIn.user.displayName + configuration.baseUrl;
}

async function fromPassword(username: string, password: string): Promise<string | null> {
  if (!(await passwordAvailable(username))) {
    return null;
  }
  const signedIn = await signInWithPassword(username, password);
  if (signedIn.upgrade) {
    const result = await upgrade({ timeout: 1000 });
    if (result.created) {
      return result.passkey.credentialId;
    }
    const reason: string = result.reason;
    const created = await register();
    await withStepUp(() => removePassword());
    return reason + created.credentialId;
  }
  return signedIn.user.username;
}
fromPassword("ada", "hunter2").catch(() => null);

flow().catch((error: unknown) => {
  if (error instanceof PasskeyClientError && error.code === "cancelled") {
    return error.serverCode;
  }
  throw error;
});

setTexts({ signIn: "Anmelden mit Passkey" });
const label: string = TEXTS.signIn;

const signInElement = document.createElement("passgate-sign-in");
signInElement.addEventListener("passgate:signed-in", (event) => {
  const name: string = event.detail.user.username;
  const created: boolean = event.detail.newAccount;
  return [name, created, label];
});
document.createElement("passgate-passkeys").refresh();
