import TableStore
