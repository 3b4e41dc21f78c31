using Forgetless.Configuration;
using Forgetless.Stages;

// Before anything loads libtorch: its OpenMP runtime reads the wait policy and thread count once, at load.
Forgetless.FineTuning.NativeHeap.UseOneArena();
TorchThreads.PrepareEnvironment();
return await ForgetlessApp.RunAsync(args);
