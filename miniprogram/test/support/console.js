/**
 * The brand's side of the journey, as staff would do it: the warehouse ships in the web
 * console (/console/orders/<no>: each line's quantity, carrier, waybill → 登记发货).
 */
class Console {
  constructor(base) {
    this.base = base
    this.cookies = {}
  }

  cookieHeader() {
    return Object.entries(this.cookies).map(([k, v]) => k + '=' + v).join('; ')
  }

  remember(res) {
    const all = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [res.headers.get('set-cookie')].filter(Boolean)
    all.forEach((line) => {
      const [pair] = line.split(';')
      const at = pair.indexOf('=')
      this.cookies[pair.slice(0, at).trim()] = pair.slice(at + 1)
    })
  }

  async get(path) {
    const res = await fetch(this.base + path, { headers: { Accept: 'text/html', Cookie: this.cookieHeader() }, redirect: 'manual' })
    this.remember(res)
    if (res.status !== 200) throw new Error('GET ' + path + ' answered ' + res.status)
    return res.text()
  }

  async post(path, fields, csrfFrom) {
    const page = await this.get(csrfFrom)
    const token = /name="csrf_token" value="([^"]+)"/.exec(page)[1]
    let res = await fetch(this.base + path, {
      method: 'POST',
      headers: { Accept: 'text/html', Cookie: this.cookieHeader(), 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...fields, csrf_token: token }).toString(),
      redirect: 'manual',
    })
    this.remember(res)
    let hops = 0
    while (res.status >= 300 && res.status < 400 && hops < 5) {
      hops += 1
      res = await fetch(new URL(res.headers.get('location'), this.base).toString(), { headers: { Accept: 'text/html', Cookie: this.cookieHeader() }, redirect: 'manual' })
      this.remember(res)
    }
    const text = await res.text()
    if (res.status !== 200 || /class="flash[^"]*\berror\b/.test(text)) throw new Error('POST ' + path + ' answered ' + res.status + ' ' + (/class="flash[^"]*\berror\b[^>]*>([^<]*)/.exec(text) || [])[1])
    return text
  }

  static async signIn(base, username, password) {
    const console = new Console(base)
    await console.post('/console/login', { username, password }, '/console/login')
    return console
  }

  /** 订单 → 这笔订单：每行填满待发数量、承运商、运单号，点「登记发货」。 */
  async shipEverything(orderNo, trackingNo) {
    const page = '/console/orders/' + orderNo
    const html = await this.get(page)
    const lines = {}
    for (const m of html.matchAll(/name="(qty_\d+)"[^>]*value="(\d+)"/g)) lines[m[1]] = m[2]
    if (!Object.keys(lines).length) throw new Error('the page of order ' + orderNo + ' offers no shipment form')
    await this.post(page + '/ship', { ...lines, carrier: '顺丰速运', tracking_no: trackingNo }, page)
  }
}

module.exports = { Console }
