// A peer in Machi ID's benchmark (bench/run.py starts it: node server.mjs PORT SECRET).
//
// node's oidc-provider with its in-memory adapter, one process (node runs
// JavaScript on one thread; the in-memory adapter is per process, so a
// cluster would need a shared adapter), one confidential client with
// client_secret_basic and a plain secret, the client_credentials grant and
// RFC 7662 introspection. Tokens live for the whole run.
import Provider from 'oidc-provider';
import { exportJWK, generateKeyPair } from 'jose';

const port = Number(process.argv[2]);
const secret = process.argv[3];
const { privateKey } = await generateKeyPair('RS256', { extractable: true });

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'bench-backend',
    client_secret: secret,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'touch_events',
  }],
  scopes: ['touch_events'],
  jwks: { keys: [{ ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig' }] },
  cookies: { keys: [secret] },
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    devInteractions: { enabled: false },
  },
  ttl: { ClientCredentials: 6 * 3600 },
});
provider.on('server_error', (ctx, error) => console.error('server_error', error));
provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${port}`));
