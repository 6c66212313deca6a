// One return request (GET /returns/<id>): lines, photos, decisions, the refund; withdraw while
// pending. The "return approved / rejected / received" messages open this page.
const { api } = require('../../utils/request')
const session = require('../../utils/session')
const { formatFen } = require('../../utils/money')
const { chinaTime } = require('../../utils/format')
const { toast } = require('../../utils/list')

Page({
  data: { ret: null, canWithdraw: false, error: '' },

  async onLoad(query) {
    this.id = query.id
    await session.loadMe().catch(() => null)
    return this.load()
  },

  async load() {
    try {
      return this.show(await api.get('/returns/' + this.id))
    } catch (err) {
      this.setData({ error: err.message })
      return null
    }
  },

  show(r) {
    this.setData({
      ret: {
        ...r, refund_text: formatFen(r.refund_fen), refunded_text: formatFen(r.refunded_fen),
        lines: r.lines.map((l) => ({ ...l, amount_text: formatFen(l.amount_fen) })),
        events: r.events.map((e) => ({ ...e, at_text: chinaTime(e.at) })),
      },
      canWithdraw: session.canOrder() && r.status === 'pending',
      error: '',
    })
    return r
  },

  onPreview(e) {
    wx.previewImage({ urls: this.data.ret.photos.map((p) => p.url), current: e.currentTarget.dataset.url })
  },

  async onWithdraw() {
    try {
      return this.show(await api.post('/returns/' + this.id + '/withdraw', {}))
    } catch (err) {
      toast(err.message)
      return null
    }
  },
})
