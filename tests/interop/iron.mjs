// Seals and unseals JSON with iron-webcrypto exactly as hono-session 1.2.0's
// default encoder does (`Iron.seal(crypto, data, secret, Iron.defaults)`).
//
// One request per line on stdin, one answer per line on stdout, in order:
//   {"op":"seal","password":P,"value":V}    -> {"token":"Fe26.2*..."}
//   {"op":"unseal","password":P,"token":T}  -> {"value":V}
//   anything that throws                    -> {"error":"message"}
// P is a string (no password id), or {"id":"k1","secret":"..."} to seal
// with an id, or {"k1":"..."} (id -> secret) to unseal by id.
// The process lives until stdin closes, so a test spawns it once.
import { createInterface } from 'node:readline'
import * as Iron from 'iron-webcrypto'

async function answer (line) {
  try {
    const request = JSON.parse(line)
    if (request.op === 'seal') {
      return { token: await Iron.seal(globalThis.crypto, request.value, request.password, Iron.defaults) }
    }
    if (request.op === 'unseal') {
      const value = await Iron.unseal(globalThis.crypto, request.token, request.password, Iron.defaults)
      return { value: value === undefined ? null : value }
    }
    return { error: `unknown op ${JSON.stringify(request.op)}` }
  } catch (err) {
    return { error: String(err?.message ?? err) }
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
for await (const line of lines) {
  if (!line.trim()) continue
  process.stdout.write(JSON.stringify(await answer(line)) + '\n')
}
