// The benchmark's reference server: discoverable passkey sign-in with @simplewebauthn/server on a minimal Node
// HTTP server, users and passkeys in SQLite (better-sqlite3). It answers the same two requests as Passgate's JSON
// API, so the load generator drives both identically:
//
//   POST /auth/passkey/login/begin     no body -> PublicKeyCredentialRequestOptionsJSON, sets the ceremony cookie
//   POST /auth/passkey/login/complete  AuthenticationResponseJSON -> {"verified": true, "user", "credentialId"}
//
// Per ceremony it does what a real relying party must: store the challenge and take it atomically (whatever the
// outcome), check Origin, look the passkey and its user up, verify the assertion, store the new counter and
// last use, and start a session (a random token, stored hashed, in a cookie). The ceremony cookie has the name
// Passgate gives its own (`passgate_ceremony`), the one the generator's browsers keep.
//
// Usage: node server.mjs --port 8001 --database /tmp/ref.db --seed seed.json
//          [--origin http://localhost:8000] [--rp-id localhost] [--host 127.0.0.1]
// seed.json: {"users": [{"id", "username", "userHandle", "credentials": [{"id", "publicKey", "counter"}]}]}
// with base64url user handles, credential ids and COSE public keys. Passkeys in the seed are added to the
// database at start (existing rows are kept).

import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { parseArgs } from "node:util";

import { generateAuthenticationOptions, verifyAuthenticationResponse } from "@simplewebauthn/server";
import Database from "better-sqlite3";
import { readFileSync } from "node:fs";

const LOGIN_BEGIN = "/auth/passkey/login/begin";
const LOGIN_COMPLETE = "/auth/passkey/login/complete";
const CEREMONY_COOKIE = "passgate_ceremony";
const SESSION_COOKIE = "reference_session";
const CHALLENGE_SECONDS = 300;
const SESSION_SECONDS = 14 * 24 * 3600;
const MAX_BODY = 64 * 1024;

const { values: args } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    database: { type: "string" },
    seed: { type: "string" },
    origin: { type: "string", default: "http://localhost:8000" },
    "rp-id": { type: "string", default: "localhost" },
  },
});
if (!args.port || !args.database) {
  console.error("usage: node server.mjs --port PORT --database FILE [--seed seed.json] [--origin O] [--rp-id ID]");
  process.exit(2);
}
const origin = args.origin;
const rpID = args["rp-id"];

const db = new Database(args.database);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
db.pragma("foreign_keys = ON");
db.exec(`
  CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, user_handle TEXT NOT NULL UNIQUE);
  CREATE TABLE IF NOT EXISTS passkeys (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), public_key BLOB NOT NULL,
    counter INTEGER NOT NULL, last_used_at INTEGER);
  CREATE TABLE IF NOT EXISTS challenges (
    id TEXT PRIMARY KEY, challenge TEXT NOT NULL, expires_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), expires_at INTEGER NOT NULL);
`);

const statements = {
  addUser: db.prepare("INSERT OR IGNORE INTO users (id, username, user_handle) VALUES (?, ?, ?)"),
  addPasskey: db.prepare("INSERT OR IGNORE INTO passkeys (id, user_id, public_key, counter) VALUES (?, ?, ?, ?)"),
  putChallenge: db.prepare("INSERT INTO challenges (id, challenge, expires_at) VALUES (?, ?, ?)"),
  takeChallenge: db.prepare("DELETE FROM challenges WHERE id = ? RETURNING challenge, expires_at"),
  passkey: db.prepare(
    `SELECT p.id, p.public_key, p.counter, u.id AS user_id, u.username, u.user_handle
     FROM passkeys p JOIN users u ON u.id = p.user_id WHERE p.id = ?`,
  ),
  used: db.prepare("UPDATE passkeys SET counter = ?, last_used_at = ? WHERE id = ?"),
  addSession: db.prepare("INSERT INTO sessions (token_hash, user_id, expires_at) VALUES (?, ?, ?)"),
};

function seed(path) {
  const { users } = JSON.parse(readFileSync(path, "utf8"));
  db.transaction(() => {
    for (const user of users) {
      statements.addUser.run(user.id, user.username, user.userHandle);
      for (const credential of user.credentials) {
        const key = Buffer.from(credential.publicKey, "base64url");
        statements.addPasskey.run(credential.id, user.id, key, credential.counter ?? 0);
      }
    }
  })();
}
if (args.seed) seed(args.seed);

class Refused extends Error {
  constructor(status, code) {
    super(code);
    this.status = status;
    this.code = code;
  }
}

const now = () => Math.floor(Date.now() / 1000);

function cookie(header, name) {
  for (const part of (header ?? "").split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return value.join("=");
  }
  return "";
}

async function loginBegin() {
  const options = await generateAuthenticationOptions({ rpID, userVerification: "preferred" });
  const ceremony = randomBytes(16).toString("base64url");
  statements.putChallenge.run(ceremony, options.challenge, now() + CHALLENGE_SECONDS);
  const setCookie = `${CEREMONY_COOKIE}=${ceremony}; Max-Age=${CHALLENGE_SECONDS}; Path=/auth; HttpOnly; SameSite=Lax`;
  return { body: options, cookies: [setCookie] };
}

async function loginComplete(request, body) {
  // Take the challenge first: it is gone whatever the outcome.
  const taken = statements.takeChallenge.get(cookie(request.headers.cookie, CEREMONY_COOKIE));
  const cookies = [`${CEREMONY_COOKIE}=; Max-Age=0; Path=/auth; HttpOnly; SameSite=Lax`];
  if (!taken || taken.expires_at < now()) throw new Refused(400, "challenge_not_found");
  let response;
  try {
    response = JSON.parse(body);
  } catch {
    throw new Refused(400, "invalid_json");
  }
  if (typeof response?.id !== "string" || typeof response?.response !== "object") {
    throw new Refused(400, "invalid_credential");
  }
  const passkey = statements.passkey.get(response.id);
  if (!passkey) throw new Refused(400, "unknown_credential");
  if (response.response.userHandle !== passkey.user_handle) throw new Refused(400, "user_handle_mismatch");
  let verification;
  try {
    verification = await verifyAuthenticationResponse({
      response,
      expectedChallenge: taken.challenge,
      expectedOrigin: origin,
      expectedRPID: rpID,
      credential: { id: passkey.id, publicKey: new Uint8Array(passkey.public_key), counter: passkey.counter },
      requireUserVerification: false,
    });
  } catch {
    throw new Refused(400, "verification_failed");
  }
  if (!verification.verified) throw new Refused(400, "verification_failed");
  const token = randomBytes(32).toString("base64url");
  const tokenHash = createHash("sha256").update(token).digest("hex");
  db.transaction(() => {
    statements.used.run(verification.authenticationInfo.newCounter, now(), passkey.id);
    statements.addSession.run(tokenHash, passkey.user_id, now() + SESSION_SECONDS);
  })();
  cookies.push(`${SESSION_COOKIE}=${token}; Max-Age=${SESSION_SECONDS}; Path=/; HttpOnly; SameSite=Lax`);
  const user = { id: passkey.user_id, username: passkey.username };
  return { body: { verified: true, user, credentialId: passkey.id }, cookies };
}

const routes = { [LOGIN_BEGIN]: loginBegin, [LOGIN_COMPLETE]: loginComplete };

function send(response, status, body, cookies = []) {
  const payload = JSON.stringify(body);
  response.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(payload),
    "Cache-Control": "no-store",
    ...(cookies.length ? { "Set-Cookie": cookies } : {}),
  });
  response.end(payload);
}

const server = createServer((request, response) => {
  const route = routes[request.url];
  if (request.method !== "POST" || !route) {
    send(response, 404, { error: "not_found" });
    return;
  }
  const chunks = [];
  let size = 0;
  request.on("data", (chunk) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  request.on("end", async () => {
    try {
      if (size > MAX_BODY) throw new Refused(413, "body_too_large");
      if (request.headers.origin !== origin) throw new Refused(403, "origin_mismatch");
      const answer = await route(request, Buffer.concat(chunks).toString("utf8"));
      send(response, 200, answer.body, answer.cookies);
    } catch (error) {
      if (error instanceof Refused) {
        send(response, error.status, { error: error.code });
      } else {
        console.error(error);
        send(response, 500, { error: "internal_error" });
      }
    }
  });
});
server.keepAliveTimeout = 5000;

function stop() {
  server.close(() => {
    db.close();
    process.exit(0);
  });
  server.closeAllConnections();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

server.listen(Number(args.port), args.host, () => {
  console.log(`reference server on http://${args.host}:${args.port} (${rpID}, ${origin})`);
});
