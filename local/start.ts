import { startEmbedded } from './embedded';

/** `npm start`: the embedded runtime on its defaults, until Ctrl-C. */
async function main(): Promise<void> {
  const embedded = await startEmbedded();
  const s = embedded.serviceUrl;
  const t = embedded.transmit.baseUrl;
  process.stdout.write(`token-keeper is running locally.

  service (handlers)   ${s}   POST /store-tokens  /get-access-token  /refresh-sweep  /disconnect
  Transmit emulator    ${t}   strict: rotating refresh tokens, reuse revokes the family
  DynamoDB Local       ${embedded.dynamoEndpoint}   table ${embedded.tableName}, data in .data/
  sweep                every 30 s; demo lifetimes: refresh token 10 min, rotated ~2 min after issue

Try the whole flow (needs curl and node):

  # 1. a client token, then sign the demo user in at the Transmit emulator
  CT=$(curl -s -X POST ${t}/oidc/token -d grant_type=client_credentials -d client_id=local-client -d client_secret=local-secret | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
  curl -s -X POST ${t}/cis/v1/auth/otp/authenticate -H "authorization: Bearer $CT" -H 'content-type: application/json' \\
    -d '{"identifier_type":"email","identifier":"demo@example.com","passcode":"123456"}' > /tmp/tk-signin.json

  # 2. store the tokens (what your auth backend does after a sign-in)
  node -e 'const t=require("/tmp/tk-signin.json");process.stdout.write(JSON.stringify({userId:"demo@example.com",tokens:t}))' \\
    | curl -s -X POST ${s}/store-tokens -H 'content-type: application/json' -d @-

  # 3. get a valid access token (asking for 2 hours of validity forces a refresh)
  curl -s -X POST ${s}/get-access-token -d '{"userId":"demo@example.com"}'
  curl -s -X POST ${s}/get-access-token -d '{"userId":"demo@example.com","minValiditySeconds":7200}'

  # 4. run a sweep now (it also runs every 30 s; the demo record is due ~2 min after each rotation)
  curl -s -X POST ${s}/refresh-sweep
  curl -s ${t}/local/stats

  # 5. cut the user off: logout at Transmit, then the record is deleted
  curl -s -X POST ${s}/disconnect -d '{"userId":"demo@example.com"}'

Ctrl-C stops everything.
`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nstopping...\n');
    embedded.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `token-keeper could not start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
