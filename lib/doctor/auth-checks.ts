import { parseChallenges, type Challenge } from '../client/registry-client.ts';
import { fail, Findings, pass, skip, check, type CheckOutcome } from './check.ts';
import { headerValue, showBody, showUrl, type DoctorSession } from './doctor-session.ts';

/**
 * `GET /v2/` and the token flow, as `docker login` and containerd do them.
 * @see https://distribution.github.io/distribution/spec/auth/token/
 */

const STRIPPED_CHALLENGE_ADVICE =
  'clients find the token endpoint only through WWW-Authenticate: without it docker login fails and pulls get "no basic auth credentials". ' +
  'Something in front of the registry removes or rewrites the header (an API Gateway REST API remaps it to x-amzn-Remapped-WWW-Authenticate; ' +
  "the stack's HTTP API is expected to pass it, see docs/aws-assumptions.md). Serve the registry through the stack's HTTP API URL or a front that passes WWW-Authenticate unchanged";

export const baseCheck = check({ id: 'base', title: 'GET /v2/: 200, or 401 with a Bearer challenge' }, async (session) => {
  const url = new URL('/v2/', session.base);
  const sent = `GET ${showUrl(url)} without credentials`;
  const response = await session.raw('GET', url);
  const header = headerValue(response.headers, 'www-authenticate');
  const apiVersion = headerValue(response.headers, 'docker-distribution-api-version');
  const observed = `${response.status}, WWW-Authenticate: ${header ?? '(absent)'}, Docker-Distribution-API-Version: ${apiVersion ?? '(absent)'}`;
  if (response.status === 200) return pass(sent, `${observed} (open registry: no token auth)`);
  if (response.status !== 401) {
    return fail(sent, `${observed}; body ${showBody(response.body)}`, `a registry answers GET /v2/ with 200 or 401; check the URL (it must be the stack's RegistryUrl output, without a path) and that the deployment finished`);
  }
  const findings = new Findings();
  const remapped = headerValue(response.headers, 'x-amzn-remapped-www-authenticate');
  findings.expect(header !== undefined, `no WWW-Authenticate${remapped ? ` (but x-amzn-Remapped-WWW-Authenticate: ${remapped})` : ''}`, STRIPPED_CHALLENGE_ADVICE);
  const bearer = parseChallenges(header ?? '').find((challenge) => challenge.scheme === 'bearer');
  if (header !== undefined) {
    findings.expect(bearer !== undefined, 'no Bearer challenge', STRIPPED_CHALLENGE_ADVICE);
    let realm: URL | undefined;
    try {
      realm = new URL(bearer?.params.realm ?? '');
    } catch {
      realm = undefined;
    }
    findings.expect(realm !== undefined, `realm ${JSON.stringify(bearer?.params.realm ?? '')} is not an absolute URL`, STRIPPED_CHALLENGE_ADVICE);
    findings.expect(Boolean(bearer?.params.service), 'no service in the challenge', STRIPPED_CHALLENGE_ADVICE);
  }
  if (bearer) session.challenge = bearer;
  return findings.outcome(sent, observed);
});

/** The scope the doctor asks for: everything it does to its own repository. */
function scopeOf(session: DoctorSession): string {
  return `repository:${session.repository}:pull,push,delete`;
}

function notChallenged(sent: string): CheckOutcome {
  return skip(sent, 'GET /v2/ answered 200: this registry does not use token auth', 'nothing to check');
}

/** The token works when `GET /v2/` with it answers 200 (docker login's last step). */
async function tryToken(session: DoctorSession, body: Buffer): Promise<{ ok: boolean; observed: string }> {
  let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
  } catch {
    return { ok: false, observed: `body is not JSON: ${showBody(body)}` };
  }
  const token = typeof parsed.token === 'string' ? parsed.token : typeof parsed.access_token === 'string' ? parsed.access_token : undefined;
  if (token === undefined) return { ok: false, observed: `no token or access_token in ${showBody(body)}` };
  const answer = await session.raw('GET', new URL('/v2/', session.base), { headers: { authorization: `Bearer ${token}` } });
  const expires = typeof parsed.expires_in === 'number' ? `, expires_in ${parsed.expires_in}` : '';
  return { ok: answer.status === 200, observed: `token of ${token.length} characters${expires}; GET /v2/ with it: ${answer.status}` };
}

/**
 * The row for a token endpoint's answer: fails with `advice.refused` unless it is 200, with `advice.rejected` when
 * `GET /v2/` refuses the token it holds; passes otherwise. `observedPrefix` names what came before this response.
 */
async function tokenOutcome(session: DoctorSession, sent: string, observedPrefix: string, response: { status: number; body: Buffer }, advice: { refused: string; rejected: string }): Promise<CheckOutcome> {
  if (response.status !== 200) return fail(sent, `${observedPrefix}${response.status}: ${showBody(response.body)}`, advice.refused);
  const tried = await tryToken(session, response.body);
  const observed = `${observedPrefix}200, ${tried.observed}`;
  return tried.ok ? pass(sent, observed) : fail(sent, observed, advice.rejected);
}

/** The challenge's realm with `service` and the given query: the token endpoint as docker calls it. */
function tokenUrl(challenge: Challenge, query: Record<string, string>): URL {
  const url = new URL(challenge.params.realm!);
  if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
  return url;
}

/** POSTs a token form (with the challenge's `service`) to the realm, as containerd and docker after login do. */
function postTokenForm(session: DoctorSession, challenge: Challenge, fields: Record<string, string>) {
  const form = new URLSearchParams(fields);
  if (challenge.params.service) form.set('service', challenge.params.service);
  return session.raw('POST', new URL(challenge.params.realm!), { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form.toString()) });
}

function basic(credentials: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

export const tokenGetCheck = check({ id: 'token-get', title: 'token by GET with Basic credentials (docker, skopeo)', needs: ['base'] }, async (session) => {
  const challenge = session.challenge;
  if (!challenge) return notChallenged('GET /token');
  const realm = tokenUrl(challenge, { scope: scopeOf(session) });
  const headers: Record<string, string> = {};
  const credentials = session.credentials;
  if (credentials && 'password' in credentials) {
    realm.searchParams.set('account', credentials.username);
    headers.authorization = basic(credentials);
  }
  const sent = `GET ${showUrl(realm)} ${headers.authorization ? `as ${credentials!.username}` : 'anonymously'}`;
  const outcome = await tokenOutcome(session, sent, '', await session.raw('GET', realm, { headers }), {
    refused: credentials ? `check --creds (user:token, a token made with \`ocireg tokens create\`)` : 'this registry wants credentials: pass --creds user:token',
    rejected: 'the token endpoint answered, but its token is not accepted by the registry: check that the token endpoint and /v2/ are the same deployment',
  });
  if (outcome.status === 'pass' && !credentials) return fail(sent, `${outcome.observed} (anonymous)`, 'pass --creds user:token: the doctor pushes an image and needs a user who may push to and delete from ocireg-doctor/*');
  return outcome;
});

export const tokenPostCheck = check({ id: 'token-post', title: 'token by POST form, grant_type=password (containerd, buildkit)', needs: ['base'] }, async (session) => {
  const challenge = session.challenge;
  const realmText = challenge?.params.realm;
  if (!challenge || realmText === undefined) return notChallenged('POST /token');
  const credentials = session.credentials;
  if (!credentials || !('password' in credentials)) {
    return fail(`POST ${realmText}`, 'not sent: no --creds', 'pass --creds user:token');
  }
  const sent = `POST ${showUrl(new URL(realmText))} form grant_type=password, username=${credentials.username}, scope=${scopeOf(session)}`;
  const response = await postTokenForm(session, challenge, { grant_type: 'password', username: credentials.username, password: credentials.password, client_id: 'ocireg-doctor', scope: scopeOf(session) });
  return tokenOutcome(session, sent, '', response, {
    refused: 'containerd and buildkit POST first and fall back to GET only on 400/401/404/405; a 5xx here breaks them. Check the function logs for this request',
    rejected: 'the token endpoint answered a POST with a token the registry refuses',
  });
});

/**
 * `docker login` asks for a refresh token (`offline_token=true`), stores it as `identitytoken`, and from then on
 * only POSTs it (`grant_type=refresh_token`): a registry that issues refresh tokens must take them back by POST.
 */
export const tokenRefreshCheck = check({ id: 'token-refresh', title: "docker login's refresh token: GET offline_token=true, then POST grant_type=refresh_token", needs: ['token-get'] }, async (session) => {
  const challenge = session.challenge;
  const credentials = session.credentials;
  if (!challenge || !credentials || !('password' in credentials)) return notChallenged('GET /token?offline_token=true');
  const login = tokenUrl(challenge, { offline_token: 'true', client_id: 'docker', account: credentials.username });
  const sent = `GET ${showUrl(login)} as ${credentials.username} (docker login), then POST grant_type=refresh_token, scope=${scopeOf(session)}`;
  const first = await session.raw('GET', login, { headers: { authorization: basic(credentials) } });
  if (first.status !== 200) return fail(sent, `GET ${first.status}: ${showBody(first.body)}`, 'docker login fails: check --creds');
  const refreshToken = (JSON.parse(first.body.toString('utf8')) as { refresh_token?: unknown }).refresh_token;
  if (typeof refreshToken !== 'string') return pass(sent, 'GET 200 without refresh_token: docker keeps sending the password (Basic) to the token endpoint');
  const response = await postTokenForm(session, challenge, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'docker', scope: scopeOf(session) });
  return tokenOutcome(session, sent, 'GET 200 with a refresh_token; POST ', response, {
    refused: 'after docker login, every docker pull and push POSTs the refresh token: they all fail. Check the function logs for the POST /token',
    rejected: 'the token issued for a refresh token is refused by the registry',
  });
});
