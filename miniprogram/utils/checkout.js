/**
 * One checkout = one Idempotency-Key. The key is made when the checkout starts and sent
 * with every POST /orders of it: a double tap, a retry after a timeout or a retry on a bad
 * network all carry the same key, so the server answers with the same order
 * (`Idempotent-Replayed: true`) instead of making two. A key is only replaced when the
 * order body changes before any submit succeeded (the server answers 409 to the same key
 * with another body), and the checkout is finished once an order came back.
 */
const { request } = require('./request')

const NETWORK_RETRIES = 2

function newIdempotencyKey() {
  const random = []
  for (let i = 0; i < 4; i += 1) random.push(Math.floor(Math.random() * 0x10000).toString(16).padStart(4, '0'))
  return 'mp-' + Date.now().toString(36) + '-' + random.join('')
}

function createCheckout() {
  let key = newIdempotencyKey()
  let lastBody = null
  let inFlight = null
  let order = null

  function submit(body) {
    if (order) return Promise.resolve({ order, replayed: true })
    if (inFlight) return inFlight // a double tap waits for the same submit
    const text = JSON.stringify(body)
    if (lastBody !== null && text !== lastBody) key = newIdempotencyKey()
    lastBody = text
    inFlight = attempt(body, 0).then((res) => {
      order = res.data
      return { order, replayed: String((res.header || {})['Idempotent-Replayed'] || (res.header || {})['idempotent-replayed'] || '') === 'true' }
    }).finally(() => {
      inFlight = null
    })
    return inFlight
  }

  function attempt(body, tries) {
    return request({ method: 'POST', path: '/orders', data: body, header: { 'Idempotency-Key': key }, withHeaders: true })
      .catch((err) => {
        const retryable = err.code === 'network' || err.status >= 500
        if (retryable && tries < NETWORK_RETRIES) return attempt(body, tries + 1)
        throw err
      })
  }

  return {
    get key() {
      return key
    },
    get order() {
      return order
    },
    submit,
  }
}

module.exports = { createCheckout, newIdempotencyKey }
