import { MemoryStorage } from '../raft/storage.js';
import { storageContract } from './storage-contract.js';

storageContract('MemoryStorage', () => {
  const storage = new MemoryStorage();
  return {
    storage,
    readySnapshot: async () => storage.snapshot(),
  };
});
