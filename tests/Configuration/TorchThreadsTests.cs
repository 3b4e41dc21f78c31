using Forgetless.Configuration;
using Forgetless.Tests.FineTuning;

namespace Forgetless.Tests.Configuration;

/// <summary>libtorch's threads on a shared machine: the CPU budget a process may use, and the OpenMP wait policy as it takes effect.</summary>
public sealed class TorchThreadsTests
{
    [Fact]
    public void The_affinity_list_counts_every_cpu_of_its_ranges()
    {
        CpuBudget.AffinityCount("Name:\tdotnet\nCpus_allowed:\tf0f\nCpus_allowed_list:\t0-3,8,10-11\nMems_allowed:\t1\n").Should().Be(7);
        CpuBudget.AffinityCount("Cpus_allowed_list:\t5\n").Should().Be(1);
        CpuBudget.AffinityCount("Name:\tdotnet\n").Should().BeNull();
    }

    [Fact]
    public void A_cgroup_v2_quota_of_the_process_or_of_a_parent_caps_the_budget()
    {
        var files = new Dictionary<string, string>
        {
            ["/ci/job/cpu.max"] = "max 100000\n",        // the job's own cgroup: unlimited
            ["/ci/cpu.max"] = "250000 100000\n",         // its parent: 2.5 CPUs
            ["/cpu.max"] = "max 100000\n",
        };
        var quota = CpuBudget.CgroupQuota("0::/ci/job\n", path => files.GetValueOrDefault(path));
        quota.Should().Be(2.5);
        CpuBudget.Combine(affinityCount: 8, quota).Should().Be(2, "a fractional quota rounds down");
        CpuBudget.Combine(affinityCount: 1, quota).Should().Be(1, "affinity binds too");
        CpuBudget.Combine(affinityCount: 4, quotaCpus: null).Should().Be(4);
        CpuBudget.Combine(affinityCount: 4, quotaCpus: 0.5).Should().Be(1, "at least one thread");
    }

    [Fact]
    public void A_cgroup_v1_cfs_quota_is_read_and_minus_one_means_none()
    {
        var files = new Dictionary<string, string>
        {
            ["cpu/docker/abc/cpu.cfs_quota_us"] = "300000\n",
            ["cpu/docker/abc/cpu.cfs_period_us"] = "100000\n",
            ["cpu/docker/cpu.cfs_quota_us"] = "-1\n",
            ["cpu/docker/cpu.cfs_period_us"] = "100000\n",
        };
        const string procCgroup = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n";
        CpuBudget.CgroupQuota(procCgroup, path => files.GetValueOrDefault(path)).Should().Be(3);
        files["cpu/docker/abc/cpu.cfs_quota_us"] = "-1\n";
        CpuBudget.CgroupQuota(procCgroup, path => files.GetValueOrDefault(path)).Should().BeNull();
    }

    [Theory]
    [InlineData("max 100000", null)]
    [InlineData("150000 100000", 1.5)]
    [InlineData("", null)]
    public void Cpu_max_is_quota_over_period(string text, double? expected) => CpuBudget.ParseCpuMax(text).Should().Be(expected);

    [Fact]
    public void The_budget_of_this_process_is_within_its_affinity()
    {
        int budget = CpuBudget.OfThisProcess();
        budget.Should().BeInRange(1, Environment.ProcessorCount);
    }

    /// <summary>
    /// libgomp prints the settings it read as it loads (OMP_DISPLAY_ENV=VERBOSE). Its default wait policy spins 300,000
    /// times at a barrier (GOMP_SPINCOUNT '300000'); passive waiting spins 0 times, the idle-core setting 3,000. The
    /// variables are removed from the child's environment, so what it prints is what the executable set for itself
    /// before libtorch loaded — which of the two depends on the machine's load as it starts, so both are accepted here
    /// (the choice itself is tested below with given loads).
    /// </summary>
    [Fact]
    public async Task The_executable_sets_its_OpenMP_wait_before_libtorch_loads_and_keeps_the_users()
    {
        using var f = new FineTuneFixture();
        File.WriteAllText(Path.Combine(f.Root, "rows.jsonl"), "{\"text\": \"the cat sat\"}\n");
        string[] score = ["score", "--model", "model", "--input", "rows.jsonl", "--output", "scored.jsonl"];
        var clean = new Dictionary<string, string?>
        {
            ["OMP_DISPLAY_ENV"] = "VERBOSE", ["OMP_WAIT_POLICY"] = null, ["OMP_NUM_THREADS"] = null, ["GOMP_SPINCOUNT"] = null,
        };
        var result = await ForgetlessProcess.RunAsync(f.Root, clean, score);
        result.ExitCode.Should().Be(0, result.ToString());
        result.Stderr.Should().Contain("OMP_WAIT_POLICY = 'PASSIVE'", result.ToString())
            .And.Match(e => e.Contains("GOMP_SPINCOUNT = '0'") || e.Contains($"GOMP_SPINCOUNT = '{TorchThreads.IdleSpinCount}'"));
        result.Stderr.Should().Contain($"OMP_NUM_THREADS = '{CpuBudget.OfThisProcess()}'");

        // A policy the user chose is kept (ACTIVE spins far longer than the default) …
        var active = await ForgetlessProcess.RunAsync(f.Root, new Dictionary<string, string?>(clean) { ["OMP_WAIT_POLICY"] = "ACTIVE" }, score);
        active.ExitCode.Should().Be(0, active.ToString());
        active.Stderr.Should().NotContain("GOMP_SPINCOUNT = '0'").And.Contain("OMP_WAIT_POLICY = 'ACTIVE'")
            .And.NotContain($"GOMP_SPINCOUNT = '{TorchThreads.IdleSpinCount}'");
        // … and so is a passive one, without a spin added to it.
        var passive = await ForgetlessProcess.RunAsync(f.Root, new Dictionary<string, string?>(clean) { ["OMP_WAIT_POLICY"] = "PASSIVE" }, score);
        passive.ExitCode.Should().Be(0, passive.ToString());
        passive.Stderr.Should().Contain("GOMP_SPINCOUNT = '0'", passive.ToString());
    }

    [Theory]
    [InlineData(0.0, 2, 2, TorchThreads.IdleSpinCount)]
    [InlineData(0.4, 2, 2, TorchThreads.IdleSpinCount)]  // noise: the sampler's own tick, a shell
    [InlineData(0.6, 2, 2, 0)]                           // one busy process beside us: sleep at barriers
    [InlineData(1.0, 2, 2, 0)]
    [InlineData(1.0, 4, 2, TorchThreads.IdleSpinCount)]  // busy cores we would not use anyway
    [InlineData(2.7, 4, 2, 0)]
    public void Threads_spin_only_where_other_work_leaves_them_their_cores(double busy, int processors, int threads, int expected) =>
        TorchThreads.SpinCountFor(busy, processors, threads).Should().Be(expected);

    [Fact]
    public void An_unknown_load_means_passive_waiting() => TorchThreads.SpinCountFor(null, 2, 2).Should().Be(0);

    [Fact]
    public void Busy_ticks_are_every_cpu_field_but_idle_and_iowait_and_own_ticks_are_utime_plus_stime()
    {
        // user nice system idle iowait irq softirq steal guest guest_nice
        CpuIdle.MachineBusyTicks("cpu  100 5 30 9000 70 2 3 4 50 0\ncpu0 50 2 15 4500 35 1 1 2 25 0\n").Should().Be(144);
        // A command name with spaces and parentheses: fields are counted after the last ')'. utime 31, stime 7.
        const string self = "4242 (dotnet (x) y) S 1 4242 4242 0 -1 4194560 2000 0 0 0 31 7 0 0 20 0 12 0 900 0 0";
        CpuIdle.OwnTicks(self).Should().Be(38);
        FluentActions.Invoking(() => CpuIdle.MachineBusyTicks("intr 1 2 3\n")).Should().Throw<FormatException>().WithMessage("*expected a 'cpu' line*");
        FluentActions.Invoking(() => CpuIdle.OwnTicks("4242 (dotnet) S 1 2")).Should().Throw<FormatException>().WithMessage("*at least 15 fields*");
        FluentActions.Invoking(() => CpuIdle.OwnTicks("no parenthesis")).Should().Throw<FormatException>();
    }

    [Fact]
    public void The_other_processes_busy_cores_are_within_the_machine()
    {
        if (!OperatingSystem.IsLinux()) return;
        // The kernel counts both sides in whole clock ticks (10 ms), sampled: over a short window, with this test run's
        // own threads busy on the same cores, the difference can exceed the machine by a few ticks. 200 ms and one core
        // of slack keep that inside the bound without letting a wrong field (a count in ms, a missed own time) through.
        var busy = CpuIdle.OthersBusyCores(TimeSpan.FromMilliseconds(200));
        busy.Should().NotBeNull().And.BeInRange(0, Environment.ProcessorCount + 1);
    }
}
