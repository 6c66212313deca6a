// Product detail: image, the dealer's price and why, stock, MOQ and pack multiple; the stepper
// only offers valid quantities; 加入购物车 is PUT /cart/items/<id>. A viewer sees no order button.
const { api } = require('../../utils/request')
const session = require('../../utils/session')
const quantity = require('../../utils/quantity')
const { product } = require('../../utils/format')
const { toast } = require('../../utils/list')

Page({
  data: { product: null, qty: 0, hint: '', canOrder: false, error: '', adding: false },

  async onLoad(query) {
    this.skuId = query.id
    try {
      await session.loadMe()
      const p = product(await api.get('/products/' + query.id))
      this.setData({ product: p, qty: quantity.rules(p).min, hint: quantity.hint(p), canOrder: session.canOrder() && !session.suspended() })
      wx.setNavigationBarTitle({ title: p.name })
    } catch (err) {
      this.setData({ error: err.message })
    }
  },

  onQtyChange(e) {
    this.setData({ qty: e.detail.qty })
  },

  onPreview() {
    if (this.data.product && this.data.product.image_url) wx.previewImage({ urls: [this.data.product.image_url] })
  },

  async onAdd() {
    if (!this.data.canOrder || this.data.adding) return
    const qty = quantity.normalize(this.data.qty, this.data.product)
    this.setData({ adding: true })
    try {
      const cart = await api.put('/cart/items/' + this.data.product.id, { qty })
      this.setData({ qty })
      wx.showToast({ title: '已加入购物车', icon: 'success' })
      return cart
    } catch (err) {
      toast(err.message)
    } finally {
      this.setData({ adding: false })
    }
  },

  onGoCart() {
    wx.switchTab({ url: '/pages/cart/cart' })
  },
})
