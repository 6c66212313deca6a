// The quantity stepper: only offers quantities the server accepts (≥ moq, a multiple of
// step; utils/quantity.js). A typed quantity snaps to the nearest valid one on blur.
const quantity = require('../../utils/quantity')

Component({
  properties: {
    qty: { type: Number, value: 0 },
    moq: { type: Number, value: 1 },
    step: { type: Number, value: 1 },
    unit: { type: String, value: '' },
    disabled: { type: Boolean, value: false },
  },
  data: { shown: 0, atMin: true, hint: '' },
  observers: {
    'qty, moq, step, unit': function (qty, moq, step, unit) {
      const rules = { moq, step, unit }
      const shown = quantity.isValid(qty, rules) ? qty : quantity.normalize(qty, rules)
      this.setData({ shown, atMin: shown <= quantity.rules(rules).min, hint: quantity.hint(rules) })
    },
  },
  methods: {
    rules() {
      return { moq: this.data.moq, step: this.data.step, unit: this.data.unit }
    },
    emit(qty) {
      this.setData({ shown: qty, atMin: qty <= quantity.rules(this.rules()).min })
      this.triggerEvent('change', { qty })
    },
    onMinus() {
      if (this.data.disabled || this.data.atMin) return
      this.emit(quantity.decrease(this.data.shown, this.rules()))
    },
    onPlus() {
      if (this.data.disabled) return
      this.emit(quantity.increase(this.data.shown, this.rules()))
    },
    onInput(e) {
      this.setData({ typed: e.detail.value })
    },
    onBlur(e) {
      if (this.data.disabled) return
      this.emit(quantity.normalize(e.detail.value, this.rules()))
    },
  },
})
