// The demo server's routes (DESIGN.md "Demo server") on the real
// hono-session 1.2.0, for sealed-session's interop tests. Written with
// `c.session` exactly as the hono-session README shows.
//
// Environment:
//   PORT                  port on 127.0.0.1 (required; 0: the OS picks one)
//   SESSION_SECRET        the secret shared with the Rust side (required)
//   SESSION_STORE         unset: stateless iron cookies; redis://...: a store
//                         keeping each record as JSON text under
//   SESSION_STORE_PREFIX  + the session id (default "sess:")
// Once it listens, it prints `listening <port>` on stdout (the port it got).
// The process exits when its stdin closes, so it never outlives the test
// that started it.
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import session from 'hono-session'

const port = Number(process.env.PORT)
const secret = process.env.SESSION_SECRET
if (!process.env.PORT || !Number.isInteger(port) || !secret) {
  throw new Error('PORT and SESSION_SECRET are required')
}

async function redisStore (url, prefix) {
  const { createClient } = await import('redis')
  const client = createClient({ url })
  client.on('error', err => console.error('redis:', err.message))
  await client.connect()
  return {
    async get (id) {
      const text = await client.get(prefix + id)
      return text == null ? null : JSON.parse(text)
    },
    async set (id, data) {
      const options = typeof data._expires === 'number' ? { PXAT: data._expires } : {}
      await client.set(prefix + id, JSON.stringify(data), options)
    },
    async delete (id) {
      await client.del(prefix + id)
    },
  }
}

const options = { secret }
if (process.env.SESSION_STORE) {
  options.store = await redisStore(process.env.SESSION_STORE, process.env.SESSION_STORE_PREFIX ?? 'sess:')
}

const app = new Hono()
  .use(session(options))
  .post('/login', async c => {
    await c.session.regenerate()
    c.session.userId = c.req.query('user')
    return c.body(null, 204)
  })
  .get('/me', async c => {
    const userId = c.session.userId
    if (!userId) return c.text('Unauthorised', 401)
    return c.text(userId)
  })
  .post('/logout', async c => {
    c.session = null
    return c.body(null, 204)
  })
  .post('/flash', async c => {
    c.session.flash('message', c.req.query('msg'))
    return c.body(null, 204)
  })
  .get('/flash', async c => c.text(c.session.message ?? ''))
  .post('/reflash', async c => {
    c.session.reflash()
    return c.body(null, 204)
  })
  .post('/renew', async c => {
    c.session.renew()
    return c.body(null, 204)
  })
  .get('/count', async c => {
    c.session.count = (c.session.count ?? 0) + 1
    return c.text(String(c.session.count))
  })
  .put('/data', async c => {
    c.session.data = await c.req.text()
    return c.body(null, 204)
  })
  .get('/data', async c => c.text(c.session.data ?? ''))

const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, info =>
  console.log(`listening ${info.port}`)
)
process.stdin.on('end', () => {
  server.close()
  process.exit(0)
})
process.stdin.resume()
