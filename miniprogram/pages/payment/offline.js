// Offline transfer (线下转账): with ?order_no= the voucher form — photo (wx.chooseMedia →
// POST /uploads), amount, transfer date — submitted to POST /payments/offline; with ?id= one
// submission and finance's decision (the page the "offline payment decided" message opens).
const { api, upload } = require('../../utils/request')
const { formatFen, parseYuan } = require('../../utils/money')
const { chinaTime, chinaToday } = require('../../utils/format')
const { toast } = require('../../utils/list')

Page({
  data: { mode: 'form', orderNo: '', amountText: '', date: '', today: '', voucher: null, payerName: '', reference: '', record: null, submitting: false, error: '' },

  async onLoad(query) {
    const today = chinaToday()
    this.setData({ today, date: today })
    if (query.id) return this.show(query.id)
    this.setData({ mode: 'form', orderNo: query.order_no || '' })
    if (query.order_no) {
      try {
        const order = await api.get('/orders/' + query.order_no)
        this.setData({ amountText: formatFen(order.totals.due_fen, { symbol: '' }).replace(/,/g, '') })
      } catch (err) {
        this.setData({ error: err.message })
      }
    }
    return null
  },

  async show(id) {
    try {
      const record = await api.get('/payments/offline/' + id)
      this.setData({ mode: 'record', record: shape(record), error: '' })
      return record
    } catch (err) {
      this.setData({ mode: 'record', error: err.message })
      return null
    }
  },

  onAmount(e) {
    this.setData({ amountText: e.detail.value })
  },
  onDate(e) {
    this.setData({ date: e.detail.value })
  },
  onPayer(e) {
    this.setData({ payerName: e.detail.value })
  },
  onReference(e) {
    this.setData({ reference: e.detail.value })
  },

  /** wx.chooseMedia (camera or album) → POST /uploads; keeps the upload's id for the form. */
  onChooseVoucher() {
    return new Promise((resolve) => {
      wx.chooseMedia({
        count: 1, mediaType: ['image'], sourceType: ['album', 'camera'], sizeType: ['compressed'],
        success: async (res) => {
          try {
            wx.showLoading({ title: '上传中' })
            const voucher = await upload(res.tempFiles[0].tempFilePath)
            this.setData({ voucher, error: '' })
            resolve(voucher)
          } catch (err) {
            this.setData({ error: err.message })
            resolve(null)
          } finally {
            wx.hideLoading()
          }
        },
        fail: () => resolve(null),
      })
    })
  },

  async onSubmit() {
    if (this.data.submitting) return null
    const amount = parseYuan(this.data.amountText)
    if (!amount) return this.setData({ error: '请填写转账金额（元，最多两位小数）' })
    if (!this.data.voucher) return this.setData({ error: '请上传转账凭证照片' })
    this.setData({ submitting: true, error: '' })
    try {
      const body = { amount_fen: amount, transfer_date: this.data.date, voucher_id: this.data.voucher.id }
      if (this.data.orderNo) body.order_no = this.data.orderNo
      if (this.data.payerName.trim()) body.payer_name = this.data.payerName.trim()
      if (this.data.reference.trim()) body.bank_reference = this.data.reference.trim()
      const record = await api.post('/payments/offline', body)
      this.setData({ mode: 'record', record: shape(record) })
      wx.showToast({ title: '已提交，待财务确认', icon: 'none' })
      return record
    } catch (err) {
      this.setData({ error: err.message })
      toast(err.message)
      return null
    } finally {
      this.setData({ submitting: false })
    }
  },
})

function shape(record) {
  return {
    ...record,
    amount_text: formatFen(record.amount_fen),
    received_text: record.received_fen === null || record.received_fen === undefined ? '' : formatFen(record.received_fen),
    created_text: chinaTime(record.created_at),
    decided_text: chinaTime(record.decided_at),
  }
}
