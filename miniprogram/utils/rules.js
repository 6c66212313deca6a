/**
 * Cart and preview lines carry no MOQ or pack multiple, so the quantity rules of the SKUs on
 * them are read from GET /products/<id> once per page session (kept here by sku id).
 */
const { api } = require('./request')

const known = {}

function remember(product) {
  known[product.id] = { moq: product.moq, step: product.step, unit: product.unit, image_url: product.image_url }
  return known[product.id]
}

async function rulesFor(skuIds) {
  const missing = skuIds.filter((id) => !known[id])
  await Promise.all(missing.map((id) => api.get('/products/' + id).then(remember).catch(() => {
    known[id] = { moq: 1, step: 1, unit: '' } // no longer orderable: the server says why
  })))
  const out = {}
  skuIds.forEach((id) => {
    out[id] = known[id]
  })
  return out
}

function forget() {
  Object.keys(known).forEach((id) => delete known[id])
}

module.exports = { rulesFor, remember, forget }
