const q = require('../utils/quantity')

const water = { moq: 10, step: 2, unit: '箱' } // 饮用天然水 in the demo
const tea = { moq: 5, step: 5, unit: '箱' }
const oddPack = { moq: 5, step: 4, unit: '件' } // the first valid quantity is 8
const plain = { moq: 1, step: 1, unit: '箱' }

test('valid means at least the MOQ and a whole multiple of the pack', () => {
  expect(q.isValid(10, water)).toBe(true)
  expect(q.isValid(12, water)).toBe(true)
  expect(q.isValid(8, water)).toBe(false)
  expect(q.isValid(11, water)).toBe(false)
  expect(q.isValid(5, oddPack)).toBe(false)
  expect(q.isValid(8, oddPack)).toBe(true)
})

test('the smallest quantity offered is the first valid one', () => {
  expect(q.rules(water).min).toBe(10)
  expect(q.rules(oddPack).min).toBe(8)
  expect(q.normalize(0, tea)).toBe(5)
})

test('typed quantities snap up to the nearest valid one', () => {
  expect(q.normalize(3, water)).toBe(10)
  expect(q.normalize(11, water)).toBe(12)
  expect(q.normalize(13, tea)).toBe(15)
  expect(q.normalize('abc', water)).toBe(10)
  expect(q.normalize(7, plain)).toBe(7)
})

test('plus and minus move one pack and never below the minimum', () => {
  expect(q.increase(10, water)).toBe(12)
  expect(q.decrease(12, water)).toBe(10)
  expect(q.decrease(10, water)).toBe(10)
  expect(q.increase(8, oddPack)).toBe(12)
  expect(q.increase(4, water)).toBe(10) // an invalid quantity (an old cart) first snaps to valid
  expect(q.decrease(4, water)).toBe(10)
})

test('every quantity the stepper walks through is accepted by the server rule', () => {
  for (const product of [water, tea, oddPack, plain]) {
    let qty = q.rules(product).min
    for (let i = 0; i < 50; i += 1) {
      expect(q.isValid(qty, product)).toBe(true)
      qty = i % 3 === 2 ? q.decrease(qty, product) : q.increase(qty, product)
    }
  }
})

test('the hint names the rule in Chinese', () => {
  expect(q.hint(water)).toBe('起订 10 箱，按 2 箱的倍数')
  expect(q.hint(plain)).toBe('')
})
