/**
 * @jest-environment jsdom
 */
// The quantity stepper rendered with miniprogram-simulate: it only ever shows and emits
// quantities the server accepts.
const path = require('path')
const simulate = require('miniprogram-simulate')

const STEPPER = path.join(__dirname, '..', 'components', 'stepper', 'index')

const id = simulate.load(STEPPER)

function render(props) {
  const comp = simulate.render(id, props)
  comp.attach(document.createElement('parent-wrapper'))
  const changes = []
  comp.instance.triggerEvent = (name, detail) => changes.push({ name, detail })
  return { comp, changes, shown: () => comp.instance.data.shown }
}

function button(comp, which) {
  return comp.querySelectorAll('.stepper__btn')[which === 'minus' ? 0 : 1]
}

test('it starts at the first valid quantity and steps by the pack multiple', async () => {
  const { comp, changes, shown } = render({ qty: 0, moq: 10, step: 2, unit: '箱' })
  expect(shown()).toBe(10)
  expect(comp.dom.innerHTML).toContain('起订 10 箱，按 2 箱的倍数')
  button(comp, 'plus').dispatchEvent('tap')
  await simulate.sleep(0)
  expect(shown()).toBe(12)
  button(comp, 'plus').dispatchEvent('tap')
  await simulate.sleep(0)
  expect(changes.map((c) => c.detail.qty)).toEqual([12, 14])
})

test('minus stops at the minimum and looks disabled there', async () => {
  const { comp, changes, shown } = render({ qty: 12, moq: 10, step: 2, unit: '箱' })
  button(comp, 'minus').dispatchEvent('tap')
  await simulate.sleep(0)
  expect(shown()).toBe(10)
  expect(button(comp, 'minus').dom.className).toContain('stepper__btn_off')
  button(comp, 'minus').dispatchEvent('tap')
  await simulate.sleep(0)
  expect(changes.map((c) => c.detail.qty)).toEqual([10])
})

test('a quantity from an old cart that breaks the rules is shown snapped to a valid one', () => {
  const { shown } = render({ qty: 4, moq: 10, step: 2, unit: '箱' })
  expect(shown()).toBe(10)
})

test('a typed quantity snaps up to a valid one on blur', async () => {
  const { comp, changes } = render({ qty: 5, moq: 5, step: 5, unit: '箱' })
  comp.querySelector('.stepper__input').dispatchEvent('blur', { detail: { value: '13' } })
  await simulate.sleep(0)
  expect(changes.pop().detail.qty).toBe(15)
})

test('disabled (a viewer) emits nothing', async () => {
  const { comp, changes } = render({ qty: 1, moq: 1, step: 1, unit: '箱', disabled: true })
  button(comp, 'plus').dispatchEvent('tap')
  await simulate.sleep(0)
  expect(changes).toEqual([])
})
