/**
 * Runs the mini-program's own page code outside WeChat: `Page({...})` is captured and turned
 * into an instance with `data`, `setData` (path keys such as "list.loading" or "a[0].b") and
 * the page's methods, as the framework does. Navigation calls of the wx shim name the next page.
 */
const path = require('path')
const fs = require('fs')

const ROOT = path.join(__dirname, '..', '..')
const APP_PAGES = JSON.parse(fs.readFileSync(path.join(ROOT, 'app.json'), 'utf8')).pages

function clone(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value))
}

function setPath(target, key, value) {
  const parts = key.replace(/\[(\d+)\]/g, '.$1').split('.')
  let node = target
  for (let i = 0; i < parts.length - 1; i += 1) {
    if (node[parts[i]] === undefined || node[parts[i]] === null) node[parts[i]] = /^\d+$/.test(parts[i + 1]) ? [] : {}
    node = node[parts[i]]
  }
  node[parts[parts.length - 1]] = value
}

const definitions = {}

/** Load pages/<route>.js and make an instance of it (not yet loaded: call onLoad yourself or use open). */
function instantiate(route) {
  if (APP_PAGES.indexOf(route) < 0) throw new Error('page not in app.json: ' + route)
  let definition = null
  global.Page = (def) => {
    definition = def
  }
  require(path.join(ROOT, route + '.js'))
  // A module runs once per module registry (jest.resetModules starts a new one, as a cold
  // start does): later instances of the page reuse the definition it registered then.
  if (definition) definitions[route] = definition
  definition = definitions[route]
  if (!definition) throw new Error(route + ' did not call Page()')
  const page = { route, data: clone(definition.data || {}) }
  Object.keys(definition).forEach((key) => {
    if (key !== 'data') page[key] = definition[key]
  })
  page.setData = function (patch, callback) {
    Object.keys(patch).forEach((key) => setPath(page.data, key, clone(patch[key])))
    if (callback) callback()
  }
  return page
}

/** A URL such as "/pages/order/detail?order_no=SO1" → {route, query}. */
function parseUrl(url) {
  const [route, search] = url.replace(/^\//, '').split('?')
  const query = {}
  ;(search || '').split('&').filter(Boolean).forEach((pair) => {
    const [k, v] = pair.split('=')
    query[decodeURIComponent(k)] = decodeURIComponent(v || '')
  })
  return { route, query }
}

/** Instantiate the page a URL names, run onLoad(query) and onShow(), as opening it would. */
async function open(url) {
  const { route, query } = parseUrl(url)
  const page = instantiate(route)
  if (page.onLoad) await page.onLoad(query)
  if (page.onShow) await page.onShow()
  return page
}

function tap(dataset, detail) {
  return { currentTarget: { dataset: dataset || {} }, detail: detail || {} }
}

function input(value) {
  return { currentTarget: { dataset: {} }, detail: { value } }
}

module.exports = { instantiate, open, parseUrl, tap, input, APP_PAGES, ROOT }
