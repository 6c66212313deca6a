// Apply for a return (退货) on a shipped order: which goods and how many (up to what shipped),
// the reason and up to 9 photos (wx.chooseMedia → POST /uploads), sent to
// POST /orders/<no>/returns; every refused line is shown beside it (details.problems).
const { api, upload } = require('../../utils/request')
const { formatFen } = require('../../utils/money')
const { toast } = require('../../utils/list')

const MAX_PHOTOS = 9

Page({
  data: { orderNo: '', lines: [], reason: '', photos: [], submitting: false, error: '' },

  async onLoad(query) {
    this.setData({ orderNo: query.order_no })
    try {
      const order = await api.get('/orders/' + query.order_no)
      this.setData({
        lines: order.lines.filter((l) => l.shipped_qty > 0).map((l) => ({
          sku_id: l.sku_id, name: l.name, spec: l.spec, unit: l.unit, shipped_qty: l.shipped_qty, qty: 0,
          unit_price_text: formatFen(l.unit_price_fen), problems: [],
        })),
      })
      return order
    } catch (err) {
      this.setData({ error: err.message })
      return null
    }
  },

  onQty(e) {
    const index = Number(e.currentTarget.dataset.index)
    const line = this.data.lines[index]
    const qty = Math.max(0, Math.min(line.shipped_qty, line.qty + Number(e.currentTarget.dataset.delta)))
    this.setData({ ['lines[' + index + '].qty']: qty })
  },

  onReason(e) {
    this.setData({ reason: e.detail.value })
  },

  onAddPhotos() {
    const room = MAX_PHOTOS - this.data.photos.length
    if (room <= 0) return Promise.resolve([])
    return new Promise((resolve) => {
      wx.chooseMedia({
        count: room, mediaType: ['image'], sourceType: ['album', 'camera'], sizeType: ['compressed'],
        success: async (res) => {
          wx.showLoading({ title: '上传中' })
          try {
            const added = []
            for (const file of res.tempFiles) added.push(await upload(file.tempFilePath))
            this.setData({ photos: this.data.photos.concat(added), error: '' })
            resolve(added)
          } catch (err) {
            this.setData({ error: err.message })
            resolve([])
          } finally {
            wx.hideLoading()
          }
        },
        fail: () => resolve([]),
      })
    })
  },

  onRemovePhoto(e) {
    this.setData({ photos: this.data.photos.filter((p) => p.id !== Number(e.currentTarget.dataset.id)) })
  },

  async onSubmit() {
    if (this.data.submitting) return null
    const lines = this.data.lines.filter((l) => l.qty > 0).map((l) => ({ sku_id: l.sku_id, qty: l.qty }))
    if (!lines.length) return this.setData({ error: '请选择要退的商品和数量' })
    if (!this.data.reason.trim()) return this.setData({ error: '请填写退货原因' })
    this.setData({ submitting: true, error: '' })
    try {
      const ret = await api.post('/orders/' + this.data.orderNo + '/returns', {
        lines, reason: this.data.reason.trim(), photo_ids: this.data.photos.map((p) => p.id),
      })
      wx.redirectTo({ url: '/pages/return/detail?id=' + ret.id })
      return ret
    } catch (err) {
      const mine = {}
      err.problems.forEach((p) => {
        if (p.sku_id) (mine[p.sku_id] = mine[p.sku_id] || []).push(p.message)
      })
      this.setData({ error: err.message, lines: this.data.lines.map((l) => ({ ...l, problems: mine[l.sku_id] || [] })) })
      toast(err.message)
      return null
    } finally {
      this.setData({ submitting: false })
    }
  },
})
