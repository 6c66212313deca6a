// One policy (GET /policies/<id>, which marks it read): body, what changed, attachments;
// 确认已阅读 (POST /policies/<id>/ack) when the policy asks for it. A viewer reads only.
const { api } = require('../../utils/request')
const session = require('../../utils/session')
const { chinaTime } = require('../../utils/format')
const { toast } = require('../../utils/list')

Page({
  data: { policy: null, canAck: false, error: '', busy: false },

  async onLoad(query) {
    this.id = query.id
    try {
      await session.loadMe()
      const policy = await api.get('/policies/' + query.id)
      this.show(policy)
      return policy
    } catch (err) {
      this.setData({ error: err.message })
      return null
    }
  },

  show(policy) {
    this.setData({
      policy: { ...policy, published_text: chinaTime(policy.published_at), acked_text: chinaTime(policy.acked_at) },
      canAck: session.canOrder() && policy.ack_required && !policy.acked,
    })
    wx.setNavigationBarTitle({ title: policy.title })
  },

  async onAck() {
    if (this.data.busy) return null
    this.setData({ busy: true })
    try {
      const ack = await api.post('/policies/' + this.id + '/ack')
      this.show({ ...this.data.policy, acked: ack.acked, acked_at: ack.acked_at })
      wx.showToast({ title: '已确认', icon: 'success' })
      return ack
    } catch (err) {
      toast(err.message)
      return null
    } finally {
      this.setData({ busy: false })
    }
  },

  onAttachment(e) {
    const { url, type } = e.currentTarget.dataset
    if (/^image\//.test(type)) {
      wx.previewImage({ urls: [url] })
      return
    }
    wx.downloadFile({ url, success: (res) => wx.openDocument({ filePath: res.tempFilePath, showMenu: true }) })
  },
})
