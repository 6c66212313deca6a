/**
 * The quantity rules the server checks (app/pricing quantity_problems): a quantity is valid
 * when it is at least the minimum order quantity (moq) and a whole multiple of step.
 * The stepper only ever offers valid quantities.
 */
function rules(product) {
  const moq = Math.max(1, parseInt(product.moq, 10) || 1)
  const step = Math.max(1, parseInt(product.step, 10) || 1)
  return { moq, step, min: Math.ceil(moq / step) * step }
}

function isValid(qty, product) {
  const { moq, step } = rules(product)
  return Number.isInteger(qty) && qty >= moq && qty % step === 0
}

/** The nearest valid quantity not below what was asked (typed 7 with moq 10 step 2 → 10; 11 → 12). */
function normalize(qty, product) {
  const { step, min } = rules(product)
  const n = parseInt(qty, 10)
  if (!Number.isInteger(n) || n <= min) return min
  return Math.ceil(n / step) * step
}

/** One step up (an invalid quantity first snaps to the nearest valid one). */
function increase(qty, product) {
  return isValid(qty, product) ? qty + rules(product).step : normalize(qty, product)
}

/** One step down, never below the minimum valid quantity. */
function decrease(qty, product) {
  const { step, min } = rules(product)
  const current = isValid(qty, product) ? qty : normalize(qty, product)
  return Math.max(min, current - step)
}

/** A hint such as "起订 10 箱，按 2 箱的倍数". */
function hint(product) {
  const { moq, step } = rules(product)
  const unit = product.unit || ''
  const parts = []
  if (moq > 1) parts.push('起订 ' + moq + ' ' + unit)
  if (step > 1) parts.push('按 ' + step + ' ' + unit + '的倍数')
  return parts.join('，')
}

module.exports = { rules, isValid, normalize, increase, decrease, hint }
