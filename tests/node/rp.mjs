// A relying party on openid-client, run by tests/browser/test_oidc_relying_parties.py against a real Passgate.
//
//   node tests/node/rp.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI SCOPE POST_LOGOUT_REDIRECT_URI
//
// It discovers the issuer, prints {"authorization_url": ...} as one JSON line, reads the URL the browser was
// redirected to (one line on stdin), exchanges the code (PKCE S256; state, nonce, RFC 9207 iss and the ID token,
// signature included, checked by openid-client), fetches userinfo, refreshes (the new ID token checked too), presents
// the rotated refresh token again, builds the RP-initiated logout URL, and prints
// {"id_token": claims, "userinfo": claims, "access_token": claims, "scope": ..., "refreshed": {...},
// "reuse_error": ..., "end_session_url": ..., "logout_state": ...} as one JSON line; the access token's claims
// are those jose's jwtVerify returns, as an API of the application would check them.
import { createInterface } from "node:readline";
import { createRemoteJWKSet, jwtVerify } from "jose";
import * as client from "openid-client";

const [issuer, clientId, clientSecret, redirectUri, scope, postLogoutRedirectUri] = process.argv.slice(2);

const config = await client.discovery(new URL(issuer), clientId, clientSecret, client.ClientSecretBasic(clientSecret), {
  execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
});

const codeVerifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const authorizationUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope,
  code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: "S256",
  state,
  nonce,
});
console.log(JSON.stringify({ authorization_url: authorizationUrl.href }));

const lines = createInterface({ input: process.stdin });
const [callbackUrl] = await lines[Symbol.asyncIterator]().next().then(({ value }) => [value]);
lines.close();

const tokens = await client.authorizationCodeGrant(config, new URL(callbackUrl), {
  pkceCodeVerifier: codeVerifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
const jwks = createRemoteJWKSet(new URL(config.serverMetadata().jwks_uri));
const { payload: accessToken } = await jwtVerify(tokens.access_token, jwks, {
  issuer,
  audience: clientId,
  typ: "at+jwt",
  algorithms: ["RS256"],
});

const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
let reuseError = null;
try {
  await client.refreshTokenGrant(config, tokens.refresh_token);
} catch (error) {
  reuseError = error.error ?? String(error);
}
const logoutState = client.randomState();
const endSessionUrl = client.buildEndSessionUrl(config, {
  id_token_hint: refreshed.id_token,
  post_logout_redirect_uri: postLogoutRedirectUri,
  state: logoutState,
});
console.log(
  JSON.stringify({
    id_token: claims,
    userinfo,
    access_token: accessToken,
    scope: tokens.scope,
    refreshed: { id_token: refreshed.claims(), rotated: refreshed.refresh_token !== tokens.refresh_token },
    reuse_error: reuseError,
    end_session_url: endSessionUrl.href,
    logout_state: logoutState,
  }),
);
