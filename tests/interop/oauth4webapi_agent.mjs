// An agent and a resource server written with panva's oauth4webapi, a strict RFC client,
// unmodified, against a running registry and verifier. It talks to the test that started
// it in JSON lines: it prints a request on stdout and reads the answer on stdin.
//
//   -> {"step": "register", "jwk": {...}}       <- {"client_id", "rs_client_id", "rs_secret"}
//   -> {"step": "approve", "auth_req_id": "..."} <- {}
//   -> {"step": "done", "checked": [...]}
//
// Every oauth4webapi check that fails throws, and the process exits non-zero.

import * as oauth from "oauth4webapi";
import { createInterface } from "node:readline";

const [issuerUrl, resource] = process.argv.slice(2);
const insecure = { [oauth.allowInsecureRequests]: true }; // http://localhost in the test only
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const checked = [];

const tell = (message) => process.stdout.write(JSON.stringify(message) + "\n");

async function ask(message) {
  tell(message);
  const { value, done } = await lines.next();
  if (done) throw new Error("the test closed stdin");
  return JSON.parse(value);
}

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

// One retry on a DPoP nonce challenge (RFC 9449 §8): the handle remembers the nonce.
async function withNonce(send) {
  try {
    return await send();
  } catch (error) {
    if (!oauth.isDPoPNonceError(error)) throw error;
    return await send();
  }
}

const issuer = new URL(issuerUrl);
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }),
);
checked.push("discovery");

const keys = await oauth.generateKeyPair("ES256", { extractable: true });
const kid = "interop-" + crypto.randomUUID();
const jwk = { ...(await crypto.subtle.exportKey("jwk", keys.publicKey)), kid, alg: "ES256", use: "sig" };
delete jwk.key_ops;
delete jwk.ext;
const registered = await ask({ step: "register", jwk });

const client = { client_id: registered.client_id };
const clientAuth = oauth.PrivateKeyJwt({ key: keys.privateKey, kid });
const dpop = oauth.DPoP(client, keys);
const details = [
  {
    type: "api",
    locations: [resource],
    actions: ["pay"],
    limits: { max_amount: { value: "25.00", currency: "EUR" } },
  },
];

// CIBA poll mode with RFC 9396 authorization details
const started = await oauth.processBackchannelAuthenticationResponse(
  as,
  client,
  await oauth.backchannelAuthenticationRequest(
    as,
    client,
    clientAuth,
    { authorization_details: JSON.stringify(details), binding_message: "Interop 1" },
    insecure,
  ),
);
checked.push("backchannel authentication request");
await ask({ step: "approve", auth_req_id: started.auth_req_id });

let tokens;
for (let interval = started.interval ?? 5; ; ) {
  try {
    tokens = await withNonce(async () =>
      oauth.processBackchannelAuthenticationGrantResponse(
        as,
        client,
        await oauth.backchannelAuthenticationGrantRequest(as, client, clientAuth, started.auth_req_id, {
          DPoP: dpop,
          ...insecure,
        }),
      ),
    );
    break;
  } catch (error) {
    if (!(error instanceof oauth.ResponseBodyError)) throw error;
    console.error(`token endpoint: ${error.error} (${error.error_description})`);
    if (error.error === "slow_down") interval += 5;
    else if (error.error !== "authorization_pending") throw error;
    await sleep(interval);
  }
}
if (tokens.token_type !== "dpop") throw new Error(`token_type ${tokens.token_type}`);
if (!Array.isArray(tokens.authorization_details)) throw new Error("no authorization_details");
checked.push("CIBA token with DPoP");

// The resource server's side: RFC 9068 validation of the access token and of the DPoP proof
// oauth4webapi sends with it, against the registry's JWKS.
async function callResource(accessToken) {
  let claims;
  const resourceServer = async (url, init) => {
    claims = await oauth.validateJwtAccessToken(as, new Request(url, init), resource, insecure);
    return new Response("{}", { status: 200, headers: { "content-type": "application/json" } });
  };
  const response = await oauth.protectedResourceRequest(
    accessToken,
    "POST",
    new URL(resource + "/pay"),
    new Headers({ "content-type": "application/json" }),
    "{}",
    { DPoP: dpop, [oauth.customFetch]: resourceServer },
  );
  if (response.status !== 200) throw new Error(`resource answered ${response.status}`);
  return claims;
}
const claims = await callResource(tokens.access_token);
if (claims.client_id !== client.client_id || claims.act?.sub !== client.client_id) {
  throw new Error(`unexpected claims ${JSON.stringify(claims)}`);
}
checked.push("RFC 9068 access token and DPoP proof");

// Introspection at the verifier, as the resource server (client_secret_basic)
const rs = { client_id: registered.rs_client_id };
const rsAuth = oauth.ClientSecretBasic(registered.rs_secret);
async function introspect(token) {
  return oauth.processIntrospectionResponse(
    as,
    rs,
    await oauth.introspectionRequest(as, rs, rsAuth, token, insecure),
  );
}
const active = await introspect(tokens.access_token);
if (active.active !== true || active.client_id !== client.client_id) {
  throw new Error(`introspection ${JSON.stringify(active)}`);
}
checked.push("introspection");

// Refresh with DPoP: a new access token bound to the same key
const refreshed = await withNonce(async () =>
  oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, {
      DPoP: dpop,
      ...insecure,
    }),
  ),
);
await callResource(refreshed.access_token);
checked.push("refresh");

// Revocation (RFC 7009): the token is inactive at the verifier soon after
await oauth.processRevocationResponse(
  await oauth.revocationRequest(as, client, clientAuth, refreshed.access_token, insecure),
);
for (let attempt = 0; ; attempt++) {
  const answer = await introspect(refreshed.access_token);
  if (answer.active === false) break;
  if (attempt > 50) throw new Error("still active after revocation");
  await sleep(0.1);
}
checked.push("revocation");

tell({ step: "done", checked });
process.exit(0);
