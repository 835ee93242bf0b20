/**
 * The `service` of challenges and the `aud` (and `iss`) of tokens, the same for every deployment: tokens do not
 * depend on the host name a client used (localhost vs 127.0.0.1, a custom domain vs the API Gateway one).
 */
export const SERVICE_NAME = 'ocireg';
