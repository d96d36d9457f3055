// AgentAuth approval pages: WebAuthn ceremonies and small actions against /ui/api.
// No inline script anywhere (the Content-Security-Policy forbids it); buttons carry
// data-action attributes and are wired here.
"use strict";

const b64urlToBytes = (value) => {
  const base64 = value.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
};
const bytesToB64url = (buffer) => {
  let raw = "";
  new Uint8Array(buffer).forEach((b) => { raw += String.fromCharCode(b); });
  return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};

const csrf = () => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
};

const say = (text, ok = false, kind = "") => {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("ok", ok);
  status.classList.toggle("denied", kind === "denied");
  status.hidden = false;
};

// An answered request looks answered: its buttons are disabled, the countdown stops.
const answered = (outcome) => {
  document.querySelectorAll(".actions button").forEach((b) => { b.disabled = true; });
  document.querySelectorAll("time[data-countdown]").forEach((el) => {
    el.removeAttribute("data-countdown");
    el.textContent = `answered (${outcome})`;
  });
  const card = document.querySelector("article.card");
  if (card) card.classList.add("answered", outcome);
};

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (csrf()) headers["X-CSRF-Token"] = csrf();
  const response = await fetch(`/ui/api${path}`, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(data.error_description || `The server answered ${response.status}.`);
  }
  return data;
}

function creationOptions(json) {
  return {
    ...json,
    challenge: b64urlToBytes(json.challenge),
    user: { ...json.user, id: b64urlToBytes(json.user.id) },
    excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: b64urlToBytes(c.id) })),
  };
}

function requestOptions(json) {
  return {
    ...json,
    challenge: b64urlToBytes(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: b64urlToBytes(c.id) })),
  };
}

function credentialJSON(credential) {
  const r = credential.response;
  const response = { clientDataJSON: bytesToB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = bytesToB64url(r.attestationObject);
    if (r.getTransports) response.transports = r.getTransports();
  } else {
    response.authenticatorData = bytesToB64url(r.authenticatorData);
    response.signature = bytesToB64url(r.signature);
    if (r.userHandle) response.userHandle = bytesToB64url(r.userHandle);
  }
  return {
    id: credential.id, rawId: bytesToB64url(credential.rawId), type: credential.type,
    response, clientExtensionResults: credential.getClientExtensionResults(),
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
  };
}

function needWebAuthn() {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    throw new Error("This browser does not support passkeys (WebAuthn); use a current browser.");
  }
}

function explain(error) {
  if (error && error.name === "NotAllowedError") {
    return "No passkey was used: the prompt was cancelled or timed out, or this authenticator"
      + " cannot verify you (a PIN, fingerprint or face check is required). Nothing was changed.";
  }
  if (error && error.name === "InvalidStateError") {
    return "This authenticator already holds a passkey for this account.";
  }
  return (error && error.message) || "Something went wrong.";
}

// Back to the page that sent the human to log in (an approval link, say); only pages of
// this site's UI, never another origin.
const nextPage = () => {
  const next = new URLSearchParams(window.location.search).get("next") || "";
  // An authorization request waiting for the login comes back to /authorize on this site.
  if (/^\/authorize\?[^#\\]*$/.test(next)) return next;
  return /^\/ui\/[A-Za-z0-9_\-\/]*$/.test(next) ? next : "/ui/";
};

const actions = {
  async register(button) {
    needWebAuthn();
    const invite = button.dataset.invite;
    const options = await api("POST", "/passkeys/register/options", { invite_token: invite });
    const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
    await api("POST", "/passkeys/register/verify", { invite_token: invite, credential: credentialJSON(credential) });
    window.location.assign("/ui/");
  },
  async login() {
    needWebAuthn();
    const options = await api("POST", "/login/options", {});
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    await api("POST", "/login/verify", { credential: credentialJSON(credential) });
    window.location.assign(nextPage());
  },
  async approve(button) {
    needWebAuthn();
    const id = button.dataset.request;
    const options = await api("POST", `/requests/${encodeURIComponent(id)}/approve/options`);
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    const result = await api("POST", `/requests/${encodeURIComponent(id)}/approve`, { credential: credentialJSON(credential) });
    say(`Approved. Grant ${result.grant_id} is active.`, true);
    answered("approved");
    if (result.redirect_to) window.location.assign(result.redirect_to);
  },
  async deny(button) {
    const result = await api("POST", `/requests/${encodeURIComponent(button.dataset.request)}/deny`);
    say("Denied. The agent will be told no.", false, "denied");
    answered("denied");
    if (result && result.redirect_to) window.location.assign(result.redirect_to);
  },
  async revoke(button) {
    await api("POST", `/grants/${encodeURIComponent(button.dataset.grant)}/revoke`);
    window.location.reload();
  },
  async disable(button) {
    await api("POST", `/agents/${encodeURIComponent(button.dataset.agent)}/disable`);
    window.location.reload();
  },
  async enroll() {
    const created = await api("POST", "/enrollment-tokens", { expires_in: 3600 });
    const command = document.getElementById("enrollment-command");
    document.getElementById("enrollment-token").textContent = created.token;
    command.textContent = [
      `curl -s -X POST ${command.dataset.issuer}/register \\`,
      `  -H 'Authorization: Bearer ${created.token}' -H 'Content-Type: application/json' \\`,
      `  -d '{"client_name": "My agent", "jwks": {"keys": [<your public JWK with a kid>]}}'`,
    ].join("\n");
    document.getElementById("enrollment").hidden = false;
  },
  async copy(button) {
    const text = document.getElementById(button.dataset.target).textContent;
    await navigator.clipboard.writeText(text);
    say("Copied.", true);
  },
  async logout() {
    await api("POST", "/logout");
    window.location.assign("/ui/login");
  },
};

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-action]");
  if (!button || !actions[button.dataset.action]) return;
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  button.disabled = true;
  try {
    await actions[button.dataset.action](button);
    if (!["approve", "deny"].includes(button.dataset.action)) button.disabled = false;
  } catch (error) {
    say(explain(error));
    button.disabled = false; // nothing was answered: it may be tried again
  }
});

const countdown = () => {
  document.querySelectorAll("time[data-countdown]").forEach((el) => {
    const left = Math.round((Date.parse(el.getAttribute("datetime")) - Date.now()) / 1000);
    el.textContent = left <= 0 ? "expired" : `${Math.floor(left / 60)} min ${left % 60} s`;
  });
};
countdown();
setInterval(countdown, 1000);
