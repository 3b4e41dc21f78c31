using System.Text;
using Forgetless.Data;
using Parquet.Serialization;
using static Forgetless.Tests.Data.PrepareFixture;

namespace Forgetless.Tests.Data;

public sealed class BadInputTests
{
    private const string Good = """{"prompt":"p","response":"r"}""";

    [Theory]
    [InlineData("{\"prompt\":\"p\",\"response\":\"r\"", "bad JSON")]
    [InlineData("""["p","r"]""", "is a JSON array; expected a JSON object")]
    [InlineData("""{"prompt":"p"}""", "missing field 'response'; expected a string")]
    [InlineData("""{"prompt":"p","response":42}""", "field 'response' is a number; expected a string")]
    [InlineData("""{"prompt":"p","response":null}""", "field 'response' is null; expected a string")]
    [InlineData("""{"prompt":"p","response":"   "}""", "field 'response' is empty; expected non-empty text")]
    public async Task A_bad_jsonl_row_fails_the_run_naming_file_line_and_expectation(string badLine, string expected)
    {
        using var f = new PrepareFixture();
        var path = f.WriteLines("t.jsonl", [Good, "", badLine, Good]);

        var act = () => f.RunAsync(Options(Instruction(path)));

        var ex = (await act.Should().ThrowAsync<DataFormatException>()).Which;
        ex.File.Should().Be(path);
        ex.Line.Should().Be(3);
        ex.Message.Should().StartWith($"{path}:3: ").And.Contain(expected);
        Directory.Exists(Path.Combine(f.Root, "out")).Should().BeFalse("nothing is written before the data is validated");
    }

    [Fact]
    public async Task Invalid_utf8_is_reported_with_line_and_byte()
    {
        using var f = new PrepareFixture();
        var bytes = Encoding.UTF8.GetBytes("first line\nsecond ").Concat(new byte[] { 0xC3, 0x28 }).Concat(Encoding.UTF8.GetBytes(" line\n")).ToArray();
        var path = f.WriteBytes("t.txt", bytes);

        var act = () => f.RunAsync(Options(Source(path)));

        var ex = (await act.Should().ThrowAsync<DataFormatException>()).Which;
        ex.Line.Should().Be(2);
        ex.Message.Should().Contain("invalid UTF-8 at byte 8").And.Contain(path);
    }

    [Fact]
    public async Task Skip_policy_counts_bad_rows_and_keeps_examples()
    {
        using var f = new PrepareFixture();
        var path = f.WriteLines("t.jsonl", [Good, "not json", """{"prompt":"p"}""", """{"prompt":"q","response":"s"}"""]);
        var options = Options(Instruction(path));
        options.OnBadRow = BadRowPolicy.Skip;

        var (stats, output) = await f.RunAsync(options);

        stats.Filtered.Skipped.Should().Be(2);
        stats.BadRowExamples.Should().HaveCount(2);
        stats.BadRowExamples[0].Should().StartWith($"{path}:2: bad JSON");
        stats.BadRowExamples[1].Should().StartWith($"{path}:3: missing field 'response'");
        (await ReadTrainAsync(output)).SelectMany(r => r.Text).Should().BeEquivalentTo("pr", "qs");
    }

    [Fact]
    public async Task Csv_unclosed_quote_and_wrong_field_count_are_reported_with_the_record_line()
    {
        using var f = new PrepareFixture();
        var wrongCount = f.Write("a.csv", "text,label\nfine,1\n\"two\nlines\",2\nonly-one-field\n");
        var unclosed = f.Write("b.csv", "text\nok\n\"never closed\nstill open\n");

        var ex1 = (await FluentActions.Awaiting(() => f.RunAsync(Options(Source(wrongCount)))).Should().ThrowAsync<DataFormatException>()).Which;
        ex1.Line.Should().Be(5);
        ex1.Problem.Should().Be("record has 1 fields; expected 2 as in the header.");
        var ex2 = (await FluentActions.Awaiting(() => f.RunAsync(Options(Source(unclosed)))).Should().ThrowAsync<DataFormatException>()).Which;
        ex2.Line.Should().Be(3);
        ex2.Problem.Should().Contain("quoted field is not closed");
    }

    [Fact]
    public async Task Csv_header_without_the_mapped_column_is_reported()
    {
        using var f = new PrepareFixture();
        var path = f.Write("a.csv", "body\nx\n");

        var ex = (await FluentActions.Awaiting(() => f.RunAsync(Options(Source(path)))).Should().ThrowAsync<DataFormatException>()).Which;

        ex.Line.Should().Be(1);
        ex.Problem.Should().Be("header has no column 'text'; found 'body'.");
    }

    [Fact]
    public async Task Parquet_null_is_reported_with_its_row_and_a_non_string_column_with_its_type()
    {
        using var f = new PrepareFixture();
        var path = Path.Combine(f.Root, "in.parquet");
        await ParquetSerializer.SerializeAsync(new[] { new TextRow { text = "a", n = 1 }, new TextRow { text = null, n = 2 } }, path);

        var ex = (await FluentActions.Awaiting(() => f.RunAsync(Options(Source(path)))).Should().ThrowAsync<DataFormatException>()).Which;
        ex.Line.Should().Be(2);
        ex.Problem.Should().Be("field 'text' is null; expected a string.");

        var wrong = Options(new DataSourceOptions { Path = path, TextField = "n" });
        var ex2 = (await FluentActions.Awaiting(() => f.RunAsync(wrong)).Should().ThrowAsync<DataFormatException>()).Which;
        ex2.Problem.Should().Be("column 'n' holds Int32; expected a string column.");
    }

    [Fact]
    public async Task Unknown_extension_and_missing_file_are_reported()
    {
        using var f = new PrepareFixture();
        var odd = f.Write("data.xml", "<x/>");

        (await FluentActions.Awaiting(() => f.RunAsync(Options(Source(odd)))).Should().ThrowAsync<DataFormatException>())
            .Which.Problem.Should().Contain("cannot tell the format from the extension '.xml'");
        (await FluentActions.Awaiting(() => f.RunAsync(Options(Source(Path.Combine(f.Root, "nope.jsonl"))))).Should().ThrowAsync<DataFormatException>())
            .Which.Problem.Should().Be("does not exist; expected an input file.");
    }

    private sealed class TextRow
    {
#pragma warning disable IDE1006 // column names as a user's file would have them
        public string? text { get; set; }
        public int n { get; set; }
#pragma warning restore IDE1006
    }
}
