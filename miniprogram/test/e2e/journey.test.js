/**
 * The dealer's journey, end to end: the mini-program's own pages and request module, with
 * `wx.*` as real HTTP to a Dinghuo server seeded with the demo and the WeChat stand-in.
 * tests/test_miniprogram.py starts that server and runs `npm test -- e2e` with:
 *   DINGHUO_E2E_API        http://127.0.0.1:<port>/api/mp/v1
 *   DINGHUO_E2E_STANDIN    http://127.0.0.1:<port> (the stand-in)
 *   DINGHUO_E2E_INVITES    JSON {"owner": "<code>", "viewer": "<code>"} (D001's demo invites)
 *   DINGHUO_E2E_WAREHOUSE  JSON {"username": "cangku", "password": "<one-time password>"}
 *   DINGHUO_E2E_TODAY      the server's business date (YYYY-MM-DD, China)
 * Without DINGHUO_E2E_API the journey is skipped (plain `npm test` runs the unit tests only).
 */
const { open, tap, input, parseUrl } = require('../support/pages')
const { createHttpWx } = require('../support/wx-http')
const { Console } = require('../support/console')

const API = process.env.DINGHUO_E2E_API
const STANDIN = process.env.DINGHUO_E2E_STANDIN
const describeIfServer = API ? describe : describe.skip

jest.setTimeout(60000)

const WATER = '饮用天然水' // the demo's SKU with MOQ 10 and pack multiple 2

function lastNavigation(wx) {
  return wx.navigations[wx.navigations.length - 1]
}

function useWx(openid) {
  jest.resetModules() // a new phone: fresh module state, as a cold start
  global.wx = createHttpWx({ standin: STANDIN, openid })
  require('../../config').setApiBase(API)
  require('../../config').setStandinBase(null) // wx.login and wx.requestPayment themselves, played by the shim
  return global.wx
}

describeIfServer('a dealer owner orders, pays and receives from the mini-program', () => {
  const invites = API ? JSON.parse(process.env.DINGHUO_E2E_INVITES) : {}
  const ownerId = 'o-e2e-owner-' + process.pid
  let wx
  let orderNo
  let water

  beforeAll(() => {
    wx = useWx(ownerId)
  })

  test('log in with a stand-in code and bind with the demo invite code', async () => {
    const login = await open('/pages/login/login')
    expect(login.data.stage).toBe('bind')
    await login.onBind()
    expect(login.data.error).toBe('请输入邀请码')
    login.onInviteInput(input('WRONG000'))
    await login.onBind()
    expect(login.data.error).toMatch(/邀请码/)
    login.onInviteInput(input(invites.owner))
    login.onNameInput(input('陈经理'))
    await login.onBind()
    expect(login.data.error).toBe('')
    expect(lastNavigation(wx)).toEqual({ kind: 'switchTab', url: '/pages/index/index' })
  })

  test('home shows what needs attention: policies to acknowledge and orders waiting', async () => {
    const home = await open('/pages/index/index')
    expect(home.data.error).toBe('')
    expect(home.data.me.dealer.code).toBe('D001')
    expect(home.data.me.user.name).toBe('陈经理')
    expect(home.data.canOrder).toBe(true)
    expect(home.data.attention.some((a) => a.kind === '政策待确认')).toBe(true)
    expect(home.data.attention.some((a) => a.kind === '待审批')).toBe(true) // the demo's SO…0006
  })

  test('browse the catalogue: prices, stock, categories, search and more on scrolling', async () => {
    const list = await open('/pages/product/list')
    expect(list.data.list.error).toBe('')
    expect(list.data.list.items).toHaveLength(20)
    expect(list.data.list.done).toBe(false)
    const first = list.data.list.items[0]
    expect(first.price_text).toMatch(/^¥\d{1,3}(,\d{3})*\.\d{2}$/)
    expect(['有货', '库存紧张', '缺货']).toContain(first.stock_label)
    await list.onReachBottom()
    expect(list.data.list.items).toHaveLength(40)
    expect(new Set(list.data.list.items.map((p) => p.id)).size).toBe(40)

    const drinks = list.data.categories.find((c) => c.name === '饮料')
    await list.onCategory(tap({ id: drinks.id }))
    expect(list.data.list.items.length).toBeGreaterThan(0)
    expect(list.data.list.items.every((p) => p.category_id === drinks.id)).toBe(true)

    list.onSearchInput(input('天然水'))
    await list.onSearch()
    water = list.data.list.items.find((p) => p.name === WATER)
    expect(water).toBeTruthy()
    list.onOpen(tap({ id: water.id }))
    expect(lastNavigation(wx)).toEqual({ kind: 'navigateTo', url: '/pages/product/detail?id=' + water.id })
  })

  test('the product page offers only valid quantities and adds to the cart', async () => {
    const detail = await open(lastNavigation(wx).url)
    expect(detail.data.product.moq).toBe(10)
    expect(detail.data.product.step).toBe(2)
    expect(detail.data.qty).toBe(10)
    expect(detail.data.hint).toBe('起订 10 箱，按 2 箱的倍数')
    expect(detail.data.canOrder).toBe(true)
    const quantity = require('../../utils/quantity')
    detail.onQtyChange({ detail: { qty: quantity.increase(detail.data.qty, detail.data.product) } })
    const cart = await detail.onAdd()
    expect(cart.items.find((l) => l.sku_id === water.id).qty).toBe(12)
  })

  test('a quantity below the MOQ (set from another phone) is shown beside its line, fixed, and the preview is clean', async () => {
    const { api } = require('../../utils/request')
    await api.put('/cart/items/' + water.id, { qty: 4 }) // the buyer's older phone: the server keeps it, with a problem
    const cart = await open('/pages/cart/cart')
    expect(cart.data.error).toBe('')
    const line = cart.data.lines.find((l) => l.sku_id === water.id)
    expect(line.problems.join()).toMatch(/起订量为 10/)
    cart.onCheckout()
    expect(lastNavigation(wx).url).toBe('/pages/checkout/checkout')

    const checkout = await open('/pages/checkout/checkout')
    expect(checkout.data.ok).toBe(false)
    const shown = checkout.data.lines.find((l) => l.sku_id === water.id)
    expect(shown.problems.join()).toMatch(/起订量为 10/)
    expect(shown.problems.join()).not.toBe('')
    expect(await checkout.onSubmit()).toBeNull() // not sent while problems remain
    expect(wx.toasts).toContain('请先处理标红的问题')

    const quantity = require('../../utils/quantity')
    await checkout.onQtyChange({ currentTarget: { dataset: { sku: String(water.id) } }, detail: { qty: quantity.normalize(4, shown) } })
    expect(checkout.data.ok).toBe(true)
    expect(checkout.data.lines.find((l) => l.sku_id === water.id)).toMatchObject({ qty: 10, problems: [] })
    expect(checkout.data.addresses[0].text).toMatch(/陈志强/)
    global.__checkout = checkout
  })

  test('choose WeChat Pay and a rebate deduction, then submit once with one Idempotency-Key', async () => {
    const checkout = global.__checkout
    const wechat = checkout.data.methods.findIndex((m) => m.value === 'wechat')
    await checkout.onMethod({ detail: { value: String(wechat) } })
    expect(checkout.data.payment.method).toBe('wechat')
    expect(checkout.data.payment.rebate_available_fen).toBeGreaterThan(100)
    checkout.onRebateInput(input('1.00'))
    await checkout.preview()
    expect(checkout.data.payment.rebate_fen).toBe(100)
    expect(checkout.data.payment.payable_fen).toBe(checkout.data.payment.total_fen - 100)

    const order = await checkout.onSubmit()
    expect(order.order_no).toMatch(/^SO\d{12}$/)
    expect(order.status).toBe('pending_approval')
    expect(order.totals.rebate_fen).toBe(100)
    expect(order.lines.map((l) => [l.name, l.qty])).toEqual([[WATER, 10]])
    orderNo = order.order_no
    expect(lastNavigation(wx)).toEqual({ kind: 'redirectTo', url: '/pages/pay/pay?order_no=' + orderNo })

    // A retry of that submit (the answer lost on a bad network) carries the same key: the same order.
    const { request } = require('../../utils/request')
    const again = await request({
      method: 'POST', path: '/orders', data: JSON.parse(JSON.stringify(checkout.body())), withHeaders: true,
      header: { 'Idempotency-Key': checkout.checkout.key },
    }).catch((e) => e)
    expect(again.data ? again.data.order_no : again.message).toBe(orderNo)
    expect(again.header['idempotent-replayed']).toBe('true')
    expect((await checkout.checkout.submit(checkout.body())).order.order_no).toBe(orderNo)

    const orders = await open('/pages/order/list')
    expect(orders.data.list.items.filter((o) => o.order_no === orderNo)).toHaveLength(1)
    const cart = await open('/pages/cart/cart')
    expect(cart.data.lines.find((l) => l.sku_id === water.id)).toBeUndefined() // ordered lines leave the cart
  })

  test('pay through the stand-in and see the order paid', async () => {
    const pay = await open(lastNavigation(wx).url)
    expect(pay.data.paid).toBe(false)
    expect(pay.data.due_text).toMatch(/^¥/)
    const order = await pay.onWechatPay()
    expect(pay.data.error).toBe('')
    expect(order.totals.due_fen).toBe(0)
    expect(order.totals.paid_fen).toBe(order.totals.total_fen - order.totals.rebate_fen)
    expect(pay.data.paid).toBe(true)

    const detail = await open('/pages/order/detail?order_no=' + orderNo)
    expect(detail.data.totals.due_text).toBe('¥0.00')
    expect(detail.data.actions).toMatchObject({ pay: false, cancel: true, confirm: false })
    expect(detail.data.events[0].label).toBe('待审批')
  })

  test('after the rep approves and the warehouse ships, the dealer confirms receipt', async () => {
    const approval = await fetch(STANDIN + '/_standin/wecom/tap', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user: 'ZhangWei', key: 'approve:' + orderNo }),
    })
    expect(approval.status).toBe(200)
    const warehouse = JSON.parse(process.env.DINGHUO_E2E_WAREHOUSE)
    const console = await Console.signIn(API.replace(/\/api\/mp\/v1$/, ''), warehouse.username, warehouse.password)
    await console.shipEverything(orderNo, 'SF' + String(Date.now()).slice(-10))

    const detail = await open('/pages/order/detail?order_no=' + orderNo)
    expect(detail.data.order.status).toBe('shipped')
    expect(detail.data.shipments[0].carrier).toBe('顺丰速运')
    expect(detail.data.lines[0].shipped_qty).toBe(10)
    expect(detail.data.actions).toMatchObject({ cancel: false, confirm: true })
    const done = await detail.onConfirmReceipt()
    expect(done.status).toBe('completed')
    expect(detail.data.order.status_label).toBe('已完成')

    const messages = await open('/pages/message/list')
    const shipped = messages.data.list.items.find((m) => m.page && m.page.indexOf(orderNo) >= 0)
    expect(shipped).toBeTruthy()
    messages.onOpen(tap({ page: shipped.page }))
    expect(parseUrl(lastNavigation(wx).url)).toEqual({ route: 'pages/order/detail', query: { order_no: orderNo } })
  })

  test('apply for a return with a photo on the received order', async () => {
    const detail = await open('/pages/order/detail?order_no=' + orderNo)
    expect(detail.data.actions.ret).toBe(true)
    detail.onReturn()
    const form = await open(lastNavigation(wx).url)
    expect(form.data.lines).toEqual([expect.objectContaining({ sku_id: water.id, shipped_qty: 10, qty: 0 })])
    await form.onSubmit()
    expect(form.data.error).toBe('请选择要退的商品和数量')
    form.onQty({ currentTarget: { dataset: { index: '0', delta: '1' } } })
    form.onQty({ currentTarget: { dataset: { index: '0', delta: '1' } } })
    form.onReason(input('外箱破损'))
    const photos = await form.onAddPhotos()
    expect(photos).toHaveLength(1)
    const ret = await form.onSubmit()
    expect(form.data.error).toBe('')
    expect(ret).toMatchObject({ order_no: orderNo, status: 'pending', reason: '外箱破损', refund_fen: 2 * ret.lines[0].unit_price_fen })
    expect(ret.photos).toHaveLength(1)
    expect(lastNavigation(wx).url).toBe('/pages/return/detail?id=' + ret.id)
    const shown = await open(lastNavigation(wx).url)
    expect(shown.data.ret.status_label).toBe('待审核')
    expect(shown.data.canWithdraw).toBe(true)
  })

  test('read and acknowledge a policy', async () => {
    const list = await open('/pages/policy/list')
    const due = list.data.list.items.find((p) => p.ack_required && !p.acked)
    expect(due).toBeTruthy()
    list.onOpen(tap({ id: due.id }))
    const detail = await open(lastNavigation(wx).url)
    expect(detail.data.policy.read).toBe(true)
    expect(detail.data.canAck).toBe(true)
    const ack = await detail.onAck()
    expect(ack).toMatchObject({ policy_id: due.id, acked: true })
    expect(detail.data.canAck).toBe(false)
    const again = await open('/pages/policy/list')
    expect(again.data.list.items.find((p) => p.id === due.id)).toMatchObject({ read: true, acked: true })
  })

  test('pay another order by offline transfer with a voucher photo', async () => {
    const { api } = require('../../utils/request')
    await api.put('/cart/items/' + water.id, { qty: 10 })
    const checkout = await open('/pages/checkout/checkout')
    await checkout.onMethod({ detail: { value: String(checkout.data.methods.findIndex((m) => m.value === 'offline')) } })
    const order = await checkout.onSubmit()
    expect(lastNavigation(wx).url).toBe('/pages/pay/pay?order_no=' + order.order_no)
    const pay = await open(lastNavigation(wx).url)
    pay.onOffline()
    const offline = await open(lastNavigation(wx).url)
    offline.onDate({ detail: { value: process.env.DINGHUO_E2E_TODAY } })
    expect(offline.data.amountText).toBe(require('../../utils/money').formatFen(order.totals.due_fen, { symbol: '' }).replace(/,/g, ''))
    await offline.onSubmit()
    expect(offline.data.error).toBe('请上传转账凭证照片')
    const voucher = await offline.onChooseVoucher()
    expect(voucher.id).toBeGreaterThan(0)
    const record = await offline.onSubmit()
    expect(offline.data.error).toBe('')
    expect(record).toMatchObject({ status: 'pending', order_no: order.order_no, amount_fen: order.totals.due_fen })
    const shown = await open('/pages/payment/offline?id=' + record.id)
    expect(shown.data.record.status_label).toBe('待确认')
  })

  test('balances, ledger, rebates and the statement to confirm', async () => {
    const account = await open('/pages/account/account')
    expect(account.data.balances.rebate).toMatch(/^¥/)
    const ledger = await open('/pages/account/ledger?account=rebate')
    expect(ledger.data.list.items.some((e) => e.amount_fen === -100 && e.order_no === orderNo)).toBe(true)
    const rebates = await open('/pages/rebate/index')
    expect(rebates.data.documents.length).toBeGreaterThan(0)
    const doc = await open('/pages/rebate/detail?id=' + rebates.data.documents[0].id)
    expect(doc.data.doc.rebate_text).toMatch(/^¥/)
    const statements = await open('/pages/statement/list')
    const pending = statements.data.list.items.find((s) => s.status === 'pending')
    const statement = await open('/pages/statement/detail?id=' + pending.id)
    expect(statement.data.canAct).toBe(true)
    await statement.onConfirm()
    expect(statement.data.statement.status).toBe('confirmed')
    expect(statement.data.canAct).toBe(false)
  })
})

describeIfServer('a viewer sees prices and orders but no order buttons', () => {
  let wx

  beforeAll(() => {
    wx = useWx('o-e2e-viewer-' + process.pid)
  })

  test('bind as the read-only user', async () => {
    const login = await open('/pages/login/login')
    login.onInviteInput(input(JSON.parse(process.env.DINGHUO_E2E_INVITES).viewer))
    await login.onBind()
    expect(login.data.error).toBe('')
    const home = await open('/pages/index/index')
    expect(home.data.canOrder).toBe(false)
    expect(home.data.roleLabel).toBe('只读')
  })

  test('no add to cart, no checkout, no order actions, no acknowledging', async () => {
    const list = await open('/pages/product/list')
    const product = list.data.list.items[0]
    expect(product.price_text).toMatch(/^¥/)
    const detail = await open('/pages/product/detail?id=' + product.id)
    expect(detail.data.canOrder).toBe(false)
    expect(await detail.onAdd()).toBeUndefined()
    const orders = await open('/pages/order/list')
    const order = await open('/pages/order/detail?order_no=' + orders.data.list.items[0].order_no)
    expect(order.data.actions).toEqual({ pay: false, cancel: false, confirm: false, ret: false })
    const policies = await open('/pages/policy/list')
    const policy = await open('/pages/policy/detail?id=' + policies.data.list.items[0].id)
    expect(policy.data.canAck).toBe(false)
    const cart = await open('/pages/cart/cart')
    expect(cart.data.canOrder).toBe(false)
  })
})
