import { EventEmitter } from 'node:events'

export interface TodoList {
  userId: string
  items: string[]
  /** How many changes this list has seen: the UI's SSE counter. */
  changes: number
}

/** Per-user todo lists in memory; emits `change` with the list after each change. */
export class TodoStore extends EventEmitter<{ change: [TodoList] }> {
  readonly #lists = new Map<string, TodoList>()

  get (userId: string): TodoList {
    let list = this.#lists.get(userId)
    if (list === undefined) {
      list = { userId, items: [], changes: 0 }
      this.#lists.set(userId, list)
    }
    return list
  }

  add (userId: string, text: string): TodoList {
    const list = this.get(userId)
    list.items.push(text)
    list.changes++
    this.emit('change', list)
    return list
  }
}
