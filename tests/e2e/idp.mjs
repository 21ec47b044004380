// A school's OpenID provider for tests/signin.rs: npm's certified `oidc-provider`, on
// 127.0.0.1, with its development sign-in pages (any password is accepted for a known login;
// the test is of Gatehouse, not of the provider's passwords).
//
// Environment: PORT, REDIRECT (the sign-in page's callback; more than one separated by
// spaces, e.g. the admin page's too), CLIENT_SECRET. Prints "IdP ready" when it listens.

import Provider from 'oidc-provider';

const { PORT, REDIRECT, CLIENT_SECRET } = process.env;
const issuer = `http://127.0.0.1:${PORT}`;

// The school's accounts: groups as Entra ID sends them (here by name, not object ID).
const people = {
  'amy.pupil': { name: 'Amy P.', groups: ['pupils'] },
  'tess.teacher': { name: 'Tess Teacher', groups: ['staff'] },
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'gatehouse',
    client_secret: CLIENT_SECRET,
    redirect_uris: REDIRECT.split(' '),
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'groups'],
  },
  // The scopes' claims in the ID token itself, as Entra ID and Google send them.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['tests-only-cookie-signing-key'] },
  async findAccount(ctx, id) {
    const login = String(id).toLowerCase();
    const person = people[login];
    if (!person) {
      return undefined;
    }
    return {
      accountId: login,
      async claims() {
        return {
          sub: login,
          preferred_username: `${login}@school.test`,
          email: `${login}@school.test`,
          email_verified: true,
          name: person.name,
          groups: person.groups,
        };
      },
    };
  },
});

provider.listen(Number(PORT), '127.0.0.1', () => {
  console.log('IdP ready');
});
